package executor

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/unikubehq/terraform-provider-unikube/internal/agentproto"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/jobs"
)

// CredentialError says a component's server refused the credentials the
// workload's own spec gives it: a user acts on the Secret (or variable)
// named in Source, not on the agent.
type CredentialError struct {
	Component, Kind string
	Address         string // host:port the agent connected to
	User            string
	// Source says where the password came from: "Secret db, key
	// password (variable POSTGRES_PASSWORD of StatefulSet/db)".
	Source string
	// Server is the server's own words, e.g. `password authentication
	// failed for user "postgres" (SQLSTATE 28P01)`.
	Server string
	Job    *jobs.PodError
}

func (e *CredentialError) Error() string {
	who := ""
	if e.User != "" {
		who = " of user " + e.User
	}
	return fmt.Sprintf("%s at %s refused the password%s (%s); the password comes from %s: correct it there or in the server%s",
		e.Kind, e.Address, who, e.Server, e.Source, jobHint(e.Job))
}

func (e *CredentialError) Unwrap() error { return e.Job }

// UnreachableError says the agent could not connect to a component's
// server at all (connection refused, unknown host, timeout).
type UnreachableError struct {
	Component, Kind string
	Address         string
	Server          string // e.g. "connection refused"
	Job             *jobs.PodError
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach %s at %s (%s): check that the workload runs and that its Service serves that port%s",
		e.Kind, e.Address, e.Server, jobHint(e.Job))
}

func (e *UnreachableError) Unwrap() error { return e.Job }

func jobHint(pe *jobs.PodError) string {
	if pe == nil || !pe.Kept {
		return ""
	}
	return fmt.Sprintf(" (agent log: kubectl -n %s logs job/%s)", pe.Namespace, pe.Job)
}

// The servers' own words for a refused password and an unreachable
// address; the agent reports them in its error line.
var (
	credentialWords = []string{
		"password authentication failed", // PostgreSQL, SQLSTATE 28P01
		"Access denied for user",         // MySQL/MariaDB 1045
		"WRONGPASS",                      // Redis 6+
		"NOAUTH",                         // Redis: a password is required
		"invalid password",               // Redis before 6
	}
	unreachableWords = []string{"connection refused", "no such host", "i/o timeout", "no route to host", "server misbehaving"}
)

// phraseTargetError turns the failed agent Job of target t into a
// *CredentialError or *UnreachableError when the agent's error says so;
// other errors are returned as they are, among them the agent's failure
// to reach the platform at platformURL (its "no such host" is not the
// target's).
func phraseTargetError(t discovery.Target, platformURL string, err error) error {
	var pe *jobs.PodError
	if !errors.As(err, &pe) {
		return err
	}
	msg := agentError(pe)
	if p, perr := url.Parse(platformURL); perr == nil && p.Hostname() != "" && strings.Contains(msg, p.Hostname()) {
		return err
	}
	u, _ := url.Parse(t.URL)
	addr, user := "", ""
	if u != nil {
		addr, user = u.Host, u.User.Username()
	}
	if w := words(msg, credentialWords); w != "" {
		return &CredentialError{Component: t.Component, Kind: string(t.Kind), Address: addr, User: user,
			Source: passwordSource(t), Server: w, Job: pe}
	}
	if w := words(msg, unreachableWords); w != "" {
		return &UnreachableError{Component: t.Component, Kind: string(t.Kind), Address: addr, Server: w, Job: pe}
	}
	return err
}

// agentError is the error line the agent wrote last, or "".
func agentError(pe *jobs.PodError) string {
	if l, ok := agentproto.Last(pe.LogTail, agentproto.TypeError); ok {
		return l.Error
	}
	return ""
}

// words returns the server's message from the first of ws found in msg to
// the end of its line, or "".
func words(msg string, ws []string) string {
	for _, w := range ws {
		if i := strings.Index(msg, w); i >= 0 {
			s, _, _ := strings.Cut(msg[i:], "\n")
			return s
		}
	}
	return ""
}

// passwordSource says where the agent's password came from.
func passwordSource(t discovery.Target) string {
	of := t.Workload.String()
	if t.PasswordEnv != "" {
		of = "variable " + t.PasswordEnv + " of " + of
	}
	switch {
	case t.PasswordRef != nil:
		return fmt.Sprintf("Secret %s, key %s (%s)", t.PasswordRef.Name, t.PasswordRef.Key, of)
	case t.Password != "":
		return "the literal value of " + of
	}
	return "nowhere: " + t.Workload.String() + " sets no password variable the agent knows, so it connected without one"
}
