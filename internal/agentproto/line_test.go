package agentproto

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
)

func TestParse_RefusesWhatIsNotAnAgentLine(t *testing.T) {
	long := `{"type":"progress","component":"` + strings.Repeat("x", MaxLineBytes) + `"}`
	cases := []struct {
		name, line, want string
	}{
		{"over-long", long, "over the limit of 4194304"},
		{"not JSON", "pg_restore: error: connection refused", "not JSON"},
		{"a JSON array", `[1,2]`, "not JSON"},
		{"truncated", `{"type":"result","result":{"component":"db"`, "not JSON"},
		{"no type", `{"component":"db"}`, "no type"},
		{"unknown type", `{"type":"explode","component":"db"}`, `unknown type "explode", want one of hello, start, progress, steps, result, error`},
		{"a type of the wrong kind", `{"type":7}`, "not JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.line))
			var le *LineError
			if !errors.As(err, &le) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse(%.60q) = %v, want a *LineError containing %q", tc.line, err, tc.want)
			}
			if len(le.Excerpt) > 100 {
				t.Fatalf("the error quotes %d bytes of the line, want a short excerpt", len(le.Excerpt))
			}
		})
	}
}

// TestParse_ReadsTypedLinesAndIgnoresFieldsItDoesNotKnow: a plan line may
// grow fields (drift signals) without breaking an older reader.
func TestParse_ReadsTypedLinesAndIgnoresFieldsItDoesNotKnow(t *testing.T) {
	l, err := Parse([]byte(`{"type":"result","component":"db","plan":{"component":"db","action":"replace","reason":"new","drift":{"rows":3}},"someday":true}` + "\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if l.Type != TypeResult || l.Plan == nil || l.Plan.Action != driver.ActionReplace || l.Plan.Reason != "new" {
		t.Fatalf("line %+v, plan %+v", l, l.Plan)
	}
	l, err = Parse([]byte(`{"type":"progress","progress":[{"component":"db","phase":"download","bytes":10,"totalBytes":20}]}`))
	if err != nil || len(l.Progress) != 1 || l.Progress[0].Bytes != 10 {
		t.Fatalf("progress %+v %v", l, err)
	}
}

// TestLine_MarshalRoundTrips: what the agent writes is what its clients read.
func TestLine_MarshalRoundTrips(t *testing.T) {
	in := Line{Type: TypeResult, Component: "db", Steps: []Step{{Name: "plan", Seconds: 0.5}},
		Result: &restore.ComponentResult{ComponentResult: driver.ComponentResult{Component: "db", Bytes: 42, ChunksFetched: 3, FilesWritten: 2}}}
	b := in.Marshal()
	if b[len(b)-1] != '\n' || strings.Count(string(b), "\n") != 1 {
		t.Fatalf("%q is not one line", b)
	}
	out, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if out.Result == nil || out.Result.ChunksFetched != 3 || out.Result.FilesWritten != 2 || out.Result.Bytes != 42 || out.Steps[0].Name != "plan" {
		t.Fatalf("round trip %+v", out)
	}
}

// TestReader_GoesOnPastHostileLines: a line that is not the agent's (a
// database tool writing to stdout, garbage, a line of many MiB) is
// reported and skipped, without holding it in memory, and the stream goes
// on to the result.
func TestReader_GoesOnPastHostileLines(t *testing.T) {
	stream := `{"type":"hello","agent":{"version":"v1.0.0"}}` + "\n" +
		"\n" +
		strings.Repeat("y", 3*MaxLineBytes) + "\n" +
		"garbage\n" +
		`{"type":"wat"}` + "\n" +
		`{"type":"result","component":"db"}` // no final newline
	r := NewReader(strings.NewReader(stream))
	var got []string
	for {
		l, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var le *LineError
		switch {
		case errors.As(err, &le):
			got = append(got, "refused: "+le.Reason)
		case err != nil:
			t.Fatal(err)
		default:
			got = append(got, string(l.Type))
		}
	}
	want := []string{"hello", "refused: 12582912 bytes, over the limit", "refused: not JSON", `refused: unknown type "wat"`, "result"}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Fatalf("line %d: got %q, want %q", i, got[i], want[i])
		}
	}
}

func TestLast_FindsTheAgentsErrorInALogTail(t *testing.T) {
	tail := []string{`{"type":"start"}`, `{"type":"error","error":"first","unchanged":true}`, "pg_restore: noise", `{"type":"error","error":"last"}`, "{broken"}
	l, ok := Last(tail, TypeError)
	if !ok || l.Error != "last" || l.Unchanged {
		t.Fatalf("Last = %+v %v", l, ok)
	}
	if _, ok := Last(tail, TypeResult); ok {
		t.Fatal("found a result line in a tail without one")
	}
}
