package sqlfilter_test

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/sqlfilter"
)

// PostgresAttacks are scripts psql must never see: each would run a
// program, read or write the restorer's files, or leave the database.
var PostgresAttacks = map[string]string{
	"shell":                        "SELECT 1;\n\\! touch /tmp/pwned\n",
	"shell mid-line":               "SELECT 1; \\! touch /tmp/pwned\n",
	"shell after a statement part": "SELECT\n1 \\! touch /tmp/pwned\n;",
	"output to a pipe":             "\\o |touch /tmp/pwned\nSELECT 1;\n",
	"query to a pipe":              "SELECT 1 \\g |touch /tmp/pwned\n",
	"copy from program":            "\\copy t from program 'touch /tmp/pwned'\n",
	"server copy program":          "COPY t FROM PROGRAM 'touch /tmp/pwned';\n",
	"server copy to program":       "COPY (SELECT 1) TO PROGRAM 'touch /tmp/pwned';\n",
	"server copy file":             "COPY t FROM '/etc/passwd';\n",
	"server copy to stdout":        "COPY t TO stdout;\n",
	"gexec":                        "SELECT 'x' \\gexec\n",
	"include":                      "\\i /etc/passwd\n",
	"include relative":             "\\ir secrets.sql\n",
	"set backtick":                 "\\set x `touch /tmp/pwned`\n",
	"connect":                      "\\connect other\n",
	"c":                            "\\c postgres\n",
	"setenv":                       "\\setenv PAGER 'touch /tmp/pwned'\n",
	"unrestrict without restrict":  "\\unrestrict abc\n",
	"variable":                     "SELECT :'HOME';\n",
	"variable unquoted":            "SELECT :VERSION;\n",
	"variable identifier":          "SELECT :\"DBNAME\";\n",
	"shell after a string":         "SELECT 'a''b'; \\! id\n",
	"shell after E string":         "SELECT E'a\\'b'; \\! id\n",
	"shell after dollar quote":     "SELECT $x$ ' $x$; \\! id\n",
	"shell after identifier":       "SELECT \"a\"\"\" ; \\! id\n",
	"shell after block comment":    "/* /* nested */ ' */ \\! id\n",
	"ambiguous quote":              "SELECT 'a\\'; \\! id --';\n",
	"dollar after number":          "SELECT 1$$ \\! id $$;\n",
	"text after copy":              "COPY t FROM stdin; \\! id\n1\n\\.\n",
	"shell after copy data":        "COPY t FROM stdin;\n1\t\\! not a command\n\\.\n\\! id\n",
	"copy inside function body":    "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;\nCOPY t FROM stdin;\n\\! id\n\\.\n",
	"shell in atomic body":         "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; \\! id\nEND;\n",
	"restrict inside a statement":  "SELECT\n\\restrict abc\n1;\n",
	// psql reads a line only up to a NUL byte.
	"NUL hides an opening quote": "SELECT 1 \x00 '\n\\! touch /tmp/pwned\n';\n",
	"NUL after copy end":         "COPY t FROM stdin;\n\\.\x00x\n\\! touch /tmp/pwned\n\\.\n",
	// In SJIS (GBK, BIG5, ...) "\x83\x5c" is one character: psql and the
	// server end the string at the quote after it.
	"sjis backslash in E string": "SET client_encoding = 'SJIS';\nSELECT E'\x83\\' ; COPY t FROM PROGRAM $$touch /tmp/pwned$$ ; -- ';\n",
	"sjis backslash in string":   "SET client_encoding = 'SJIS';\nSET standard_conforming_strings = off;\nSELECT '\x83\\\\' , ' ; COPY t FROM PROGRAM $$touch /tmp/pwned$$ ; -- ';\n",
	"sjis escaped high byte":     "SET client_encoding = 'SJIS';\nSELECT E'\\\x83\\'' , ' ; COPY t FROM PROGRAM $$touch /tmp/pwned$$ ; -- ';\n",
}

func TestPostgres_RefusesEveryMetaCommandAndEscapeWithItsLine(t *testing.T) {
	for name, script := range PostgresAttacks {
		t.Run(name, func(t *testing.T) {
			out, err := io.ReadAll(sqlfilter.Postgres(strings.NewReader(script)))
			if !sqlfilter.IsRefused(err) {
				t.Fatalf("accepted %q (passed %q, err %v)", script, out, err)
			}
			if !strings.Contains(err.Error(), "line ") {
				t.Errorf("error %q names no line", err)
			}
			if bytes.Contains(out, []byte("\\! id")) || bytes.Contains(out, []byte("\\! touch")) || bytes.Contains(out, []byte("PROGRAM")) {
				t.Errorf("passed on the attack before refusing: %q", out)
			}
			t.Log(err)
		})
	}
}

func TestPostgres_ErrorNamesTheLineAndTheConstruct(t *testing.T) {
	script := "SET x = 1;\n\nCREATE TABLE t (a text);\nINSERT INTO t VALUES ('\\! not a command');\n\\! touch /tmp/pwned\n"
	err := sqlfilter.CheckPostgres(strings.NewReader(script))
	if err == nil || !strings.Contains(err.Error(), "line 5") || !strings.Contains(err.Error(), `\\! touch /tmp/pwned`) || !strings.Contains(err.Error(), "psql meta-command") {
		t.Fatalf("err = %v; want line 5, the construct and what it is", err)
	}
}

func TestPostgres_PassesWhatDumpsHold(t *testing.T) {
	script := strings.Join([]string{
		"--",
		"-- PostgreSQL database dump",
		"--",
		"",
		"\\restrict Ab12Cd34",
		"",
		"SET standard_conforming_strings = on;",
		"SELECT pg_catalog.set_config('search_path', '', false);",
		"CREATE FUNCTION public.f(x integer) RETURNS integer",
		"    LANGUAGE plpgsql",
		"    AS $_$ BEGIN RETURN $1 + 1; /* \\! */ END $_$;",
		"CREATE FUNCTION public.g() RETURNS text LANGUAGE sql AS $$ SELECT 'a\\b' $$;",
		"CREATE FUNCTION public.h() RETURNS integer LANGUAGE sql",
		"BEGIN ATOMIC",
		" SELECT CASE WHEN true THEN 1 ELSE 2 END;",
		" SELECT 2;",
		"END;",
		"CREATE TABLE public.t (a text CHECK (a ~ '^\\d+$'::text), \"b\"\"c\" int, d$x int);",
		"COMMENT ON TABLE public.t IS E'it''s \\\\ \\' here';",
		"-- a comment with \\! in it",
		"/* block /* nested */ \\! still comment */",
		"COPY public.t (a, \"b\"\"c\", d$x) FROM stdin;",
		"12\t\\N\t3",
		"\\! not a command in data\t1\t2",
		"'unbalanced \" $$ /* in data\t1\t2",
		"\\.",
		"SELECT 1::int, arr[1:2] FROM t;",
		"\\unrestrict Ab12Cd34",
		"",
	}, "\n")
	out, err := io.ReadAll(sqlfilter.Postgres(iotest.OneByteReader(strings.NewReader(script))))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("restrict")) {
		t.Errorf("pg_dump's \\restrict lines were passed on: %q", out)
	}
	if !bytes.Contains(out, []byte("\\! not a command in data")) || strings.Count(string(out), "\n") != strings.Count(script, "\n") {
		t.Errorf("script changed beyond the \\restrict lines:\n%s", out)
	}
}

// MySQLAttacks are scripts the mysql client must never see.
var MySQLAttacks = map[string]string{
	"shell":                  "SET @a = 1;\n\\! touch /tmp/pwned\n",
	"shell mid-line":         "SET @a = 1; \\! touch /tmp/pwned\n",
	"system":                 "system touch /tmp/pwned\n",
	"source":                 "source /etc/passwd\n",
	"tee":                    "tee /tmp/pwned\n",
	"pager":                  "pager touch /tmp/pwned\n",
	"connect":                "connect other\n",
	"u":                      "\\u other\n",
	"r":                      "\\r other localhost\n",
	"use":                    "USE other;\nCREATE TABLE t (a int);\n",
	"use unquoted":           "use `other`;\n",
	"second dump database":   "CREATE DATABASE /*!32312 IF NOT EXISTS*/ `shop`;\n\nUSE `shop`;\nUSE `other`;\n",
	"qualified insert":       "INSERT INTO other.t VALUES (1);\n",
	"qualified quoted":       "INSERT INTO `Other`.`t` VALUES (1);\n",
	"qualified drop":         "DROP TABLE IF EXISTS mysql.user;\n",
	"three part name":        "CREATE VIEW v AS SELECT x.t.c FROM x.t;\n",
	"qualified in trigger":   "DELIMITER ;;\nCREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW INSERT INTO other.t VALUES (1) ;;\nDELIMITER ;\n",
	"qualified in exec cmt":  "/*!50001 CREATE VIEW v AS SELECT * FROM other.t */;\n",
	"create database":        "CREATE DATABASE other;\n",
	"drop database":          "DROP DATABASE other;\n",
	"drop database in event": "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO DROP DATABASE other;\n",
	"outfile":                "SELECT 1 INTO OUTFILE '/tmp/pwned';\n",
	"outfile in insert":      "INSERT INTO t SELECT * FROM t INTO OUTFILE '/tmp/x';\n",
	"load data local":        "LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE t;\n",
	"load_file":              "INSERT INTO t VALUES (LOAD_FILE('/etc/passwd'));\n",
	"prepare":                "SET @s = 'DROP DATABASE other';\nPREPARE s FROM @s;\n",
	"grant":                  "GRANT ALL ON *.* TO x;\n",
	"set global":             "SET GLOBAL general_log_file = '/tmp/x';\n",
	"set @@global":           "SET @@global.sql_mode = '';\n",
	"no backslash escapes":   "SET sql_mode = 'NO_BACKSLASH_ESCAPES';\nINSERT INTO t VALUES ('\\'); \\! id\n",
	"ansi quotes":            "/*!40101 SET SQL_MODE='ANSI' */;\n",
	"escaped mode name":      "SET sql_mode = 'NO_BACKSLASH_E\\SCAPES';\n",
	"mode from a variable":   "SET @m = CONCAT('NO_BACKSLASH', '_ESCAPES');\nSET sql_mode = @m;\n",
	"saved mode overwritten": "SET @o = @@sql_mode;\nINSERT INTO t SELECT @o := 'ANSI_QUOTES';\nSET sql_mode = @o;\n",
	"gbk client":             "SET NAMES gbk;\n",
	"names then mode":        "SET NAMES utf8mb4, sql_mode = 'ANSI_QUOTES';\n",
	"shell after string":     "INSERT INTO t VALUES ('a\\'b'); \\! id\n",
	"shell after backtick":   "INSERT INTO `a``b` VALUES (1); \\! id\n",
	"shell in exec comment":  "/*!40101 \\! id */;\n",
	"call":                   "CALL mysql.x();\n",
	"select":                 "SELECT 1;\n",
	"dashdash control":       "INSERT INTO t VALUES (1) --\x01 '\n; \\! id\n",
	"unknown statement":      "HANDLER t OPEN;\n",
	"kill":                   "KILL 1;\n",
	"set password":           "SET PASSWORD = 'x';\n",
	"install plugin":         "INSTALL PLUGIN x SONAME 'x.so';\n",
	"udf":                    "CREATE FUNCTION sys_exec RETURNS int SONAME 'lib.so';\n",
	"delimiter then shell":   "DELIMITER //\nCREATE PROCEDURE p() BEGIN SELECT 1; END //\n\\! id\n",
	// The mode named past what the filter keeps of a string.
	"sql_mode after a long prefix": "SET sql_mode = '" + strings.Repeat("REAL_AS_FLOAT,", 80) + "NO_BACKSLASH_ESCAPES';\nINSERT INTO t VALUES ('a\\'); USE other; -- ');\n",
	// The server reads \t as a tab where the filter reads "t".
	"sql_mode with an escaped tab": "SET sql_mode = 'NO_BACKSLASH_ESCAPES\\t';\nINSERT INTO t VALUES ('a\\'); USE other; -- ');\n",
}

func TestMySQL_RefusesEveryClientCommandAndEscapeWithItsLine(t *testing.T) {
	for name, script := range MySQLAttacks {
		t.Run(name, func(t *testing.T) {
			out, err := io.ReadAll(sqlfilter.MySQL(strings.NewReader(script), sqlfilter.MySQLOptions{Databases: []string{"other", "app"}}))
			if !sqlfilter.IsRefused(err) {
				t.Fatalf("accepted %q (passed %q, err %v)", script, out, err)
			}
			if !strings.Contains(err.Error(), "line ") {
				t.Errorf("error %q names no line", err)
			}
			t.Log(err)
		})
	}
}

func TestMySQL_PassesWhatDumpsHold(t *testing.T) {
	script := strings.Join([]string{
		"/*M!999999\\- enable the sandbox mode */ ",
		"-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB",
		"/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;",
		"/*!40101 SET NAMES utf8mb4 */;",
		"/*!40103 SET TIME_ZONE='+00:00' */;",
		"/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;",
		"/*M!100616 SET @OLD_NOTE_VERBOSITY=@@NOTE_VERBOSITY, NOTE_VERBOSITY=0 */;",
		"CREATE DATABASE /*!32312 IF NOT EXISTS*/ `shop` /*!40100 DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci */;",
		"",
		"USE `shop`;",
		"DROP TABLE IF EXISTS `items`;",
		"/*!40101 SET @saved_cs_client     = @@character_set_client */;",
		"/*!40101 SET character_set_client = utf8mb4 */;",
		"CREATE TABLE `items` (",
		"  `id` int(11) NOT NULL AUTO_INCREMENT, -- comment \\! here",
		"  `name` varchar(200) NOT NULL # another ' comment",
		") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;",
		"/*!40101 SET character_set_client = @saved_cs_client */;",
		"LOCK TABLES `items` WRITE;",
		"/*!40000 ALTER TABLE `items` DISABLE KEYS */;",
		"INSERT INTO `items` VALUES (1,'O\\'Brien \\\\ \\! \"x\" ;'),(2,'a''b');",
		"/*!40000 ALTER TABLE `items` ENABLE KEYS */;",
		"UNLOCK TABLES;",
		"/*!50001 DROP VIEW IF EXISTS `expensive`*/;",
		"/*!50001 CREATE ALGORITHM=UNDEFINED */",
		"/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */",
		"/*!50001 VIEW `expensive` AS select `items`.`id` AS `id` from `items` where `items`.`price` > 50 */;",
		"/*!50003 SET @saved_sql_mode       = @@sql_mode */ ;",
		"/*!50003 SET sql_mode              = 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION' */ ;",
		"DELIMITER ;;",
		"/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit VALUES (NEW.qty) */;;",
		"CREATE DEFINER=`root`@`localhost` FUNCTION `twice`(x int) RETURNS int(11)",
		"    DETERMINISTIC",
		"RETURN x * 2 ;;",
		"DELIMITER ;",
		"/*!50003 SET sql_mode              = @saved_sql_mode */ ;",
		"/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;",
		"/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;",
		"",
	}, "\n")
	out, err := io.ReadAll(sqlfilter.MySQL(iotest.OneByteReader(strings.NewReader(script)), sqlfilter.MySQLOptions{Databases: []string{"other"}}))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("USE `shop`")) || bytes.Contains(out, []byte("CREATE DATABASE")) || bytes.Contains(out, []byte("sandbox")) {
		t.Errorf("the --databases header or the sandbox line was passed on:\n%s", out)
	}
	if strings.Count(string(out), "\n") != strings.Count(script, "\n") {
		t.Errorf("lines were lost:\n%s", out)
	}
}

func ExampleCheckPostgres() {
	err := sqlfilter.CheckPostgres(strings.NewReader("CREATE TABLE t (a int);\n\\! rm -rf ~\n"))
	fmt.Println(err)
	// Output: line 2: psql meta-command: "\\! rm -rf ~" is refused (a package is data: it may not run client commands or touch other databases)
}

func TestFilters_RefuseAScriptCutShort(t *testing.T) {
	for _, tc := range []struct {
		name  string
		check func(string) error
		cut   string
		whole string
	}{
		{"postgres in COPY data", func(s string) error { return sqlfilter.CheckPostgres(strings.NewReader(s)) }, "COPY t FROM stdin;\n1\tx\n2\t", "SELECT 'a'"},
		{"postgres in a string", func(s string) error { return sqlfilter.CheckPostgres(strings.NewReader(s)) }, "INSERT INTO t VALUES ('abc", "SELECT $$a$$"},
		{"mysql in a string", func(s string) error { return sqlfilter.CheckMySQL(strings.NewReader(s), sqlfilter.MySQLOptions{}) }, "INSERT INTO t VALUES ('abc", "INSERT INTO t VALUES ('a')"},
		{"mysql in a comment", func(s string) error { return sqlfilter.CheckMySQL(strings.NewReader(s), sqlfilter.MySQLOptions{}) }, "/*!40101 SET NAMES utf8", "/*!40101 SET NAMES utf8 */"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.check(tc.cut); !sqlfilter.IsRefused(err) || !strings.Contains(err.Error(), "truncated") {
				t.Errorf("%q: %v; want it refused as truncated", tc.cut, err)
			}
			if err := tc.check(tc.whole); err != nil {
				t.Errorf("%q: %v", tc.whole, err)
			}
		})
	}
}
