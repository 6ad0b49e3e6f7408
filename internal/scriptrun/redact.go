package scriptrun

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
)

// Redacted replaces a secret value in a script's output.
const Redacted = "(sensitive)"

// minSecretLen is the shortest value masked: masking every "1" or "on"
// would garble the log and hide nothing worth hiding.
const minSecretLen = 4

// redactor masks secret values in what a script printed, before it is
// streamed, recorded or returned: a script that echoes its credential, or
// an exception quoting it, must not put it into a run record, a terminal
// or a Terraform diagnostic. The secrets are the values of sensitive
// variables, the data values of the credentials Secrets mounted into the
// pod, and the job token fetching the data.
type redactor struct {
	r *strings.Replacer
	// withheld, when set, replaces the whole log: the secrets to mask
	// could not be read.
	withheld string
}

// withheld is a redactor that lets nothing of the log through.
func withheld(err error) redactor {
	return redactor{withheld: "(log withheld: " + err.Error() + "; read it in the cluster with kubectl logs)\n"}
}

// newRedactor masks each secret, its base64 form (as `kubectl get secret
// -o yaml` or a debugging `env | base64` would print it) and, for a
// multi-line secret (a PEM key, a JSON key file), each of its lines: the
// live log is masked line by line.
func newRedactor(secrets []string) redactor {
	seen := map[string]bool{}
	var all []string
	add := func(s string) {
		s = strings.TrimRight(s, "\r\n")
		if len(strings.TrimSpace(s)) >= minSecretLen && !seen[s] {
			seen[s] = true
			all = append(all, s)
		}
	}
	for _, s := range secrets {
		if len(s) < minSecretLen {
			continue
		}
		add(s)
		add(base64.StdEncoding.EncodeToString([]byte(s)))
		if strings.Contains(s, "\n") {
			for _, line := range strings.Split(s, "\n") {
				add(line)
			}
		}
	}
	if len(all) == 0 {
		return redactor{}
	}
	// Longest first: a value containing another is masked whole.
	sort.Slice(all, func(i, j int) bool { return len(all[i]) > len(all[j]) })
	pairs := make([]string, 0, 2*len(all))
	for _, s := range all {
		pairs = append(pairs, s, Redacted)
	}
	return redactor{r: strings.NewReplacer(pairs...)}
}

func (r redactor) String(s string) string {
	if r.withheld != "" {
		if s == "" {
			return ""
		}
		return r.withheld
	}
	if r.r == nil {
		return s
	}
	return r.r.Replace(s)
}

// sensitiveValues are the values of the sensitive variables among vars.
func sensitiveValues(vars []variable) []string {
	var out []string
	for _, v := range vars {
		if v.Sensitive {
			out = append(out, v.Value)
		}
	}
	return out
}

// UnreadableCredentialsError says a credentials Secret could not be read,
// so its values cannot be masked in the script's log.
type UnreadableCredentialsError struct {
	Namespace, Secret string
	Err               error
}

func (e *UnreadableCredentialsError) Error() string {
	return fmt.Sprintf("cannot read credentials Secret %s/%s to mask its values in the script's log (grant get on secrets in %s): %v",
		e.Namespace, e.Secret, e.Namespace, e.Err)
}

func (e *UnreadableCredentialsError) Unwrap() error { return e.Err }

// credentialValues reads the values the script's credentials mount: the
// listed keys of each Secret, or all of its keys when none are listed. A
// missing Secret has nothing to leak (the pod will not start); any other
// failure is an *UnreadableCredentialsError.
func credentialValues(ctx context.Context, cs kubernetes.Interface, ns string, creds []client.Credential) ([]string, error) {
	var out []string
	for _, c := range creds {
		s, err := cs.CoreV1().Secrets(ns).Get(ctx, c.Secret, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, &UnreadableCredentialsError{Namespace: ns, Secret: c.Secret, Err: err}
		}
		if len(c.Keys) == 0 {
			for _, v := range s.Data {
				out = append(out, string(v))
			}
			for _, v := range s.StringData {
				out = append(out, v)
			}
			continue
		}
		for _, k := range c.Keys {
			if v, ok := s.Data[k]; ok {
				out = append(out, string(v))
			}
		}
	}
	return out, nil
}

// errNoPlatformDefault is a sensitive variable whose default only the
// platform holds, in a run the platform does not record.
var errNoPlatformDefault = errors.New("its default is sealed on the platform and only handed out when the run is recorded there")
