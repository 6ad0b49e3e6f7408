// Package testenv starts REAL services for tests: PostgreSQL, MariaDB, Redis,
// an S3-compatible server (versitygw), an OCI registry (the CNCF
// distribution registry, basic auth) and a single-node OpenSearch 2.19
// (from Maven artifacts, laid out by scripts/install-opensearch.sh), each on a free loopback port, in
// its own temporary directory, with a random password, torn down at the end.
//
// In a test, one call each:
//
//	pg := testenv.StartPostgres(t)   // pg.URL("db"), pg.Env() for pg_dump/psql, pg.BinDir
//	my := testenv.StartMariaDB(t)    // my.DSN("db") for go-sql-driver/mysql
//	rd := testenv.StartRedis(t)      // rd.Addr(), rd.Password, rd.URL(0)
//	s3 := testenv.StartS3(t)         // s3.Endpoint, s3.AccessKey, s3.SecretKey, s3.Client()
//	reg := testenv.StartRegistry(t)  // reg.Host (127.0.0.1:PORT), reg.User, reg.Password (basic auth)
//	os := testenv.StartOpenSearch(t) // os.URL (http, no auth); os.SecureFront(t) adds TLS and a password
//
// Start* helpers stop the server with t.Cleanup. They skip the test only when
// the server binary is not installed (run `make tools`); with
// UNIKUBE_TESTENV_REQUIRE=1 (set by `make test`) that fails the test instead.
// Any other startup problem fails the test, with the tail of the server log.
//
// Run* helpers are for TestMain, benchmarks and tools: they return a stop
// function instead. Their context bounds startup only; the server runs until
// stop is called.
//
// Servers run in their own process group with Pdeathsig=SIGKILL, so a killed
// test binary leaves none behind. When run as root, PostgreSQL runs as the
// `postgres` system user and OpenSearch as `nobody` (both refuse root). Fresh data directories are copied
// from templates cached under ToolsDir()/templates (see template.go), which
// makes a start take about a second instead of initdb's several.
package testenv
