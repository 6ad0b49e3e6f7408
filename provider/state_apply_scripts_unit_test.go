package provider

import (
	"errors"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/scriptrun"
)

func TestScriptFailure_SaysWhatFailedThenTheTraceOnceThenWhereToLook(t *testing.T) {
	trace := "Traceback (most recent call last):\n  File \"x\", line 3\nKeyError: 'COUNT'\n"
	cases := []struct {
		name, when string
		err        error
		want       []string // in this order
	}{
		{"python pre", "pre", &scriptrun.FailedError{Script: "shop/seed-users", RunID: "r1", Namespace: "dev", Job: "job-1", ExitCode: 1,
			Reason: "exited 1", Trace: trace, LogTail: "noise\n" + trace},
			[]string{"failed in namespace dev: exited 1.", "Traceback", "KeyError: 'COUNT'", "was not applied",
				"kubectl -n dev logs job/job-1", "helm state script logs shop/seed-users r1"}},
		{"no trace: the log tail", "post", &scriptrun.FailedError{Script: "shop/x", Namespace: "dev", Reason: "DeadlineExceeded", LogTail: "step 1\n"},
			[]string{"DeadlineExceeded.", "Last log lines:\nstep 1", "was applied; run terraform apply again"}},
		{"validation", "pre", &scriptrun.ValidationError{Script: "shop/x", Msg: "unknown variable FOO"},
			[]string{"unknown variable FOO (nothing was run).", "was not applied"}},
		{"other", "post", errors.New("api down"), []string{"api down", "was applied"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg := scriptFailure(tc.when, tc.err)
			rest := msg
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("message lacks %q (or not in order):\n%s", w, msg)
				}
				rest = rest[i+len(w):]
			}
			if n := strings.Count(msg, "Traceback"); n > 1 {
				t.Errorf("trace shown %d times:\n%s", n, msg)
			}
		})
	}
}
