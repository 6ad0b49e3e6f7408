// Command unikube-agent is the in-cluster data mover. It runs inside the
// Jobs of the Kubernetes executor and drives the same restore/capture
// drivers as the local executor:
//
//	unikube-agent restore --platform URL --state PROJECT/NAME --version sha256:... --component NAME --target URL
//	unikube-agent capture --platform URL --state PROJECT/NAME [--tag @new-candidate] --component NAME --source URL
//	unikube-agent install DEST      copy this binary to DEST (the init container of a Job)
//	unikube-agent version
//
// The platform token comes from UNIKUBE_TOKEN or --token-file, the
// target's password from UNIKUBE_TARGET_PASSWORD or --password-file: never
// from the command line. A platform whose certificate a private CA signed
// is verified against the PEM bundle UNIKUBE_CA_FILE or --ca-file names
// (trusted besides the system's roots; verification is never turned off).
// Progress is written as JSON lines on stdout, the
// first of them {"type":"hello","agent":{"version":...}}: the agent works
// only for a client of its own version (UNIKUBE_CLIENT_VERSION, set by the
// Job), and refuses another before it reads or changes anything. On
// failure the last line is {"type":"error","error":"..."} and the exit
// status is 1.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
