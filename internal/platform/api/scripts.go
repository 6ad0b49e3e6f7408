package api

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"

	"github.com/unikubehq/terraform-provider-unikube/internal/apitypes"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/auth"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/store"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

var (
	envName    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	k8sName    = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)
	secretKey  = regexp.MustCompile(`^[-._a-zA-Z0-9]{1,253}$`)
	imageRef   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,511}$`)
	maxLogTail = 64 << 10
)

const redacted = "(sensitive)"

func validateScript(req apitypes.ScriptRequest) error {
	switch req.Interpreter {
	case "sh", "bash", "python":
	default:
		return errf(http.StatusBadRequest, "interpreter %q: use sh, bash or python", req.Interpreter)
	}
	if req.Body == "" {
		return errf(http.StatusBadRequest, "body is required: the script's source")
	}
	if req.Image != "" && !imageRef.MatchString(req.Image) {
		return errf(http.StatusBadRequest, "image %q is not a container image reference", req.Image)
	}
	if req.ServiceAccount != "" && !k8sName.MatchString(req.ServiceAccount) {
		return errf(http.StatusBadRequest, "service_account %q is not a Kubernetes name", req.ServiceAccount)
	}
	seen := map[string]bool{}
	for _, v := range req.Variables {
		if !envName.MatchString(v.Name) {
			return errf(http.StatusBadRequest, "variable %q: names are environment variable names ([A-Za-z_][A-Za-z0-9_]*)", v.Name)
		}
		if seen[v.Name] {
			return errf(http.StatusBadRequest, "variable %q is declared twice", v.Name)
		}
		seen[v.Name] = true
	}
	for _, c := range req.Credentials {
		if !k8sName.MatchString(c.Secret) {
			return errf(http.StatusBadRequest, "credentials: secret %q is not a Kubernetes Secret name (credentials reference a Secret; raw values are never stored)", c.Secret)
		}
		for _, k := range c.Keys {
			if !secretKey.MatchString(k) {
				return errf(http.StatusBadRequest, "credentials: key %q of secret %s is not a valid Secret key", k, c.Secret)
			}
		}
	}
	return nil
}

func scriptNames(r *http.Request) (string, string, error) {
	project, _, err := names(r)
	if err != nil {
		return "", "", err
	}
	name := r.PathValue("script")
	if err := statepkg.ValidateName(name); err != nil {
		return "", "", errf(http.StatusBadRequest, "script: %v", err)
	}
	return project, name, nil
}

func (s *Server) listScripts(w http.ResponseWriter, r *http.Request) {
	project, _, err := names(r)
	if err == nil {
		_, err = s.need(r, project, "", auth.RoleViewer)
	}
	var out []store.Script
	if err == nil {
		out, err = s.st.ListScripts(r.Context(), project)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	public := make([]apitypes.Script, len(out))
	for i := range out {
		public[i] = publicScript(out[i])
	}
	writeJSON(w, http.StatusOK, public)
}

func (s *Server) getScript(w http.ResponseWriter, r *http.Request) {
	project, name, err := scriptNames(r)
	if err == nil {
		_, err = s.need(r, project, "", auth.RoleViewer)
	}
	var sc store.Script
	if err == nil {
		sc, err = s.st.GetScript(r.Context(), project, name)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, publicScript(sc))
}

// publicScript is a script as the API shows it: a sensitive variable's
// default is never shown, only that one is set.
func publicScript(sc store.Script) apitypes.Script {
	out := sc.Script
	out.Variables = make([]apitypes.Variable, len(sc.Variables))
	for i, v := range sc.Variables {
		v.DefaultSet = v.Default != "" || sc.Sealed[v.Name] != ""
		if v.Sensitive {
			v.Default = ""
		}
		out.Variables[i] = v
	}
	return out
}

// SealContext binds a sealed default to its script and variable.
func SealContext(project, script, variable string) string {
	return project + "/" + script + "/" + variable
}

// sealDefaults turns the request's variables into what is stored, with
// the sealed defaults by variable name: the default of a sensitive
// variable is sealed with the server's key (refused without one), and
// default_set without a default keeps the stored one, so a script shown
// and put back keeps its secret.
func (s *Server) sealDefaults(r *http.Request, project, name string, vars []apitypes.Variable) ([]apitypes.Variable, map[string]string, error) {
	var prev *store.Script
	out := make([]apitypes.Variable, 0, len(vars))
	sealedDefaults := map[string]string{}
	for _, v := range vars {
		switch {
		case !v.Sensitive:
			v.DefaultSet = v.Default != ""
		case v.Default != "":
			if !s.cfg.Secrets.HasKey() {
				return nil, nil, errf(http.StatusBadRequest, "variable %s is sensitive and has a default, but this platform keeps no secrets in plain text and has no key to seal it with: "+
					"start the server with UNIKUBE_SECRET_KEY or --secret-key-file, or drop the default and pass %s when the script runs", v.Name, v.Name)
			}
			sealed, err := s.cfg.Secrets.Seal(v.Default, SealContext(project, name, v.Name))
			if err != nil {
				return nil, nil, fmt.Errorf("seal the default of %s: %w", v.Name, err)
			}
			v.Default, v.DefaultSet = "", true
			sealedDefaults[v.Name] = sealed
		case v.DefaultSet:
			if prev == nil {
				sc, err := s.st.GetScript(r.Context(), project, name)
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					return nil, nil, err
				}
				prev = &sc
			}
			pv, ok := findVariable(prev.Variables, v.Name)
			if !ok || !pv.Sensitive || (prev.Sealed[v.Name] == "" && pv.Default == "") {
				return nil, nil, errf(http.StatusBadRequest, "variable %s: default_set without a default keeps the stored default, but script %s has none for it: give the default", v.Name, name)
			}
			v.Default = pv.Default
			if sealed := prev.Sealed[v.Name]; sealed != "" {
				sealedDefaults[v.Name] = sealed
			}
		}
		out = append(out, v)
	}
	return out, sealedDefaults, nil
}

func findVariable(vs []apitypes.Variable, name string) (apitypes.Variable, bool) {
	for _, v := range vs {
		if v.Name == name {
			return v, true
		}
	}
	return apitypes.Variable{}, false
}

func (s *Server) putScript(w http.ResponseWriter, r *http.Request) {
	project, name, err := scriptNames(r)
	var p auth.Principal
	if err == nil {
		p, err = s.need(r, project, "", auth.RoleMaintainer)
	}
	var req apitypes.ScriptRequest
	if err == nil {
		err = s.decodeJSON(w, r, &req)
	}
	if err == nil {
		err = validateScript(req)
	}
	if err == nil {
		_, err = s.st.GetProject(r.Context(), project)
	}
	var vars []apitypes.Variable
	var sealed map[string]string
	if err == nil {
		vars, sealed, err = s.sealDefaults(r, project, name, req.Variables)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	now := s.cfg.Now().UTC()
	sc := store.Script{Script: apitypes.Script{Project: project, Name: name, Description: req.Description, Image: req.Image, Interpreter: req.Interpreter,
		Body: req.Body, Variables: vars, ServiceAccount: req.ServiceAccount, Credentials: req.Credentials,
		Author: p.Name(), CreatedAt: now, ModifiedAt: now}, Sealed: sealed}
	created, err := s.st.PutScript(r.Context(), sc)
	if err == nil {
		sc, err = s.st.GetScript(r.Context(), project, name)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, publicScript(sc))
}

func (s *Server) deleteScript(w http.ResponseWriter, r *http.Request) {
	project, name, err := scriptNames(r)
	if err == nil {
		_, err = s.need(r, project, "", auth.RoleOwner)
	}
	if err == nil {
		err = s.st.DeleteScript(r.Context(), project, name)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listRuns(w http.ResponseWriter, r *http.Request) {
	project, name, err := scriptNames(r)
	if err == nil {
		_, err = s.need(r, project, "", auth.RoleViewer)
	}
	limit := 50
	if v := r.URL.Query().Get("limit"); err == nil && v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 1 || n > 1000 {
			err = errf(http.StatusBadRequest, "limit must be 1-1000")
		}
		limit = n
	}
	if err == nil {
		_, err = s.st.GetScript(r.Context(), project, name)
	}
	var out []store.Run
	if err == nil {
		out, err = s.st.ListRuns(r.Context(), project, name, limit)
	}
	var logs bool
	if err == nil {
		logs, err = s.mayReadRunLogs(r, project)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for i := range out {
		out[i] = runFor(out[i], logs)
	}
	writeJSON(w, http.StatusOK, out)
}

// createRun records that the caller starts the script; the values of
// sensitive variables are checked but never stored.
func (s *Server) createRun(w http.ResponseWriter, r *http.Request) {
	project, name, err := scriptNames(r)
	var p auth.Principal
	if err == nil {
		p, err = s.need(r, project, "", auth.RoleApplier)
	}
	var req apitypes.CreateRunRequest
	if err == nil {
		err = s.decodeJSON(w, r, &req)
	}
	var sc store.Script
	if err == nil {
		sc, err = s.st.GetScript(r.Context(), project, name)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	vars := map[string]string{}
	secrets := map[string]string{}
	declared := map[string]store.Variable{}
	for _, v := range sc.Variables {
		declared[v.Name] = v
		val, ok := req.Variables[v.Name]
		if sealed := sc.Sealed[v.Name]; !ok && v.Sensitive && sealed != "" {
			plain, err := s.cfg.Secrets.Open(sealed, SealContext(project, name, v.Name))
			if err != nil {
				s.fail(w, r, errf(http.StatusConflict, "the default of sensitive variable %s of script %s cannot be opened: %v; "+
					"restore the server's secret key, or pass %s when running, or put the script again with its default", v.Name, name, err, v.Name))
				return
			}
			val, ok = plain, true
			secrets[v.Name] = plain
		} else if !ok {
			val, ok = v.Default, v.Default != ""
			if ok && v.Sensitive {
				// Stored in plain text before defaults were sealed.
				secrets[v.Name] = val
			}
		}
		if !ok && v.Required {
			s.fail(w, r, errf(http.StatusBadRequest, "variable %s is required by script %s", v.Name, name))
			return
		}
		if ok {
			if v.Sensitive {
				val = redacted
			}
			vars[v.Name] = val
		}
	}
	for k := range req.Variables {
		if _, ok := declared[k]; !ok {
			s.fail(w, r, errf(http.StatusBadRequest, "variable %s is not declared by script %s", k, name))
			return
		}
	}
	run := store.Run{ID: auth.NewID(), Project: project, Script: name, Status: store.RunPending, Variables: vars, Target: req.Target,
		CreatedAt: s.cfg.Now().UTC(), CreatedBy: p.Name()}
	if err := s.st.CreateRun(r.Context(), run); err != nil {
		s.fail(w, r, err)
		return
	}
	// Only this answer carries the sensitive defaults (the CreatedRun
	// schema); the stored run never holds them.
	if len(secrets) > 0 {
		run.SensitiveDefaults = secrets
	}
	writeJSON(w, http.StatusCreated, run)
}

func (s *Server) getRun(w http.ResponseWriter, r *http.Request) {
	project, name, err := scriptNames(r)
	if err == nil {
		_, err = s.need(r, project, "", auth.RoleViewer)
	}
	var run store.Run
	if err == nil {
		run, err = s.st.GetRun(r.Context(), project, name, r.PathValue("run"))
	}
	var logs bool
	if err == nil {
		logs, err = s.mayReadRunLogs(r, project)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, runFor(run, logs))
}

// mayReadRunLogs reports whether the caller may read runs' log tails and
// stack traces: appliers and above. What a script printed can hold what it
// worked on; viewers see that a run happened and how it ended.
func (s *Server) mayReadRunLogs(r *http.Request, project string) (bool, error) {
	role, err := s.authn.RoleOn(r.Context(), principalFrom(r.Context()), project, "")
	if err != nil {
		return false, err
	}
	return role >= auth.RoleApplier, nil
}

// runFor strips the log tail and stack trace unless logs.
func runFor(run store.Run, logs bool) store.Run {
	if !logs {
		run.LogTail, run.StackTrace = "", ""
	}
	return run
}

func (s *Server) updateRun(w http.ResponseWriter, r *http.Request) {
	project, name, err := scriptNames(r)
	if err == nil {
		_, err = s.need(r, project, "", auth.RoleApplier)
	}
	var req apitypes.UpdateRunRequest
	if err == nil {
		err = s.decodeJSON(w, r, &req)
	}
	var run store.Run
	if err == nil {
		run, err = s.st.GetRun(r.Context(), project, name, r.PathValue("run"))
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	switch req.Status {
	case "":
	case store.RunPending, store.RunRunning, store.RunSucceeded, store.RunFailed:
		run.Status = req.Status
	default:
		s.fail(w, r, errf(http.StatusBadRequest, "status %q: use pending, running, succeeded or failed", req.Status))
		return
	}
	if req.StartedAt != nil {
		run.StartedAt = req.StartedAt
	}
	if req.FinishedAt != nil {
		run.FinishedAt = req.FinishedAt
	}
	if req.ExitCode != nil {
		run.ExitCode = req.ExitCode
	}
	if req.LogTail != nil {
		run.LogTail = tail(*req.LogTail, maxLogTail)
	}
	if req.StackTrace != nil {
		run.StackTrace = tail(*req.StackTrace, maxLogTail)
	}
	if err := s.st.UpdateRun(r.Context(), run); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, run)
}

// tail keeps the last n bytes of s, marking the cut.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("[... %d bytes cut ...]\n", len(s)-n) + s[len(s)-n:]
}
