package mysql

import "testing"

// MySQL's mysqldump writes a table's rows on one INSERT line, MariaDB's a
// row a line; quoted parentheses and escaped quotes are not rows.
func TestSummarizer_BothInsertLayouts(t *testing.T) {
	s := newSummarizer()
	_, _ = s.Write([]byte("CREATE TABLE `t` (\n  `a` int\n) ENGINE=InnoDB AUTO_INCREMENT=7;\n" +
		"INSERT INTO `t` VALUES (1,'a (b), c'),(2,'it\\'s ('),(3,NULL);\n" +
		"INSERT INTO `u` VALUES\n(1),\n(2);\n" +
		"CREATE TABLE `empty` (`a` int);\n"))
	sum := s.summary()
	if len(sum.Tables) != 3 || sum.Tables[0].Rows != 3 || sum.Tables[1].Name != "u" || sum.Tables[1].Rows != 2 || sum.Tables[2].Rows != 0 {
		t.Fatalf("tables = %+v", sum.Tables)
	}
	if want := "CREATE TABLE `t` (\n  `a` int\n) ENGINE=InnoDB;\nCREATE TABLE `empty` (`a` int);\n"; sum.Schema != want {
		t.Errorf("schema = %q, want %q", sum.Schema, want)
	}
}
