package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
)

// DefaultImages are the images the script runner uses when a script names
// none (scriptrun.DefaultImages; a test keeps them equal). The console
// offers them as suggestions without importing the runner, which would
// bring Kubernetes' client into the platform binary.
var DefaultImages = map[string]string{
	"sh":     "docker.io/library/busybox:1.37",
	"bash":   "docker.io/library/bash:5.2",
	"python": "docker.io/library/python:3.13-alpine",
}

var interpreters = []string{"sh", "bash", "python"}

func scriptHref(project, script string) string {
	return projectHref(project) + "/scripts/" + url.PathEscape(script)
}

func (c *Console) scriptPage(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r.Context())
	project, name := r.PathValue("project"), r.PathValue("script")
	sc, err := s.api.GetScript(r.Context(), project, name)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	runs, err := s.api.ListRuns(r.Context(), project, name, 50)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	image := sc.Image
	if image == "" {
		image = DefaultImages[sc.Interpreter] + " (default)"
	}
	c.render(w, r, http.StatusOK, "script", project+"/"+name, map[string]any{
		"Script": sc, "Runs": runs, "Role": c.role(r, project, ""), "Image": image, "Href": scriptHref(project, name),
		"Source":     c.hl.source(sc.Interpreter, sc.Body),
		"RunCommand": "helm state script run " + project + "/" + name + " RELEASE --namespace NAMESPACE --follow",
	}, crumb{"Projects", "/"}, crumb{project, projectHref(project)})
}

// varRow is one row of the variables table in the edit form.
type varRow struct {
	client.Variable
	Index int
}

// spareVariableRows are the empty rows the edit form offers for new variables.
const spareVariableRows = 3

func (c *Console) scriptEditPage(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r.Context())
	project, name := r.PathValue("project"), r.PathValue("script")
	sc := client.Script{Project: project, Interpreter: "sh"}
	if name != "" {
		var err error
		if sc, err = s.api.GetScript(r.Context(), project, name); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	c.showScriptForm(w, r, http.StatusOK, sc, name == "", "")
}

func (c *Console) showScriptForm(w http.ResponseWriter, r *http.Request, status int, sc client.Script, isNew bool, problem string) {
	rows := make([]varRow, 0, len(sc.Variables)+spareVariableRows)
	for i, v := range sc.Variables {
		rows = append(rows, varRow{Variable: v, Index: i})
	}
	for i := 0; i < spareVariableRows; i++ {
		rows = append(rows, varRow{Index: len(sc.Variables) + i})
	}
	var creds []string
	for _, cr := range sc.Credentials {
		line := cr.Secret
		if len(cr.Keys) > 0 {
			line += ": " + strings.Join(cr.Keys, ", ")
		}
		creds = append(creds, line)
	}
	title := "New script"
	if !isNew {
		title = "Edit " + sc.Name
	}
	c.render(w, r, status, "script_edit", title, map[string]any{
		"Script": sc, "New": isNew, "Variables": rows, "Credentials": strings.Join(creds, "\n"),
		"Interpreters": interpreters, "Images": DefaultImages, "Error": problem, "Action": projectHref(sc.Project) + "/scripts",
	}, crumb{"Projects", "/"}, crumb{sc.Project, projectHref(sc.Project)})
}

// saveScript creates or replaces a script from the edit form.
func (c *Console) saveScript(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r.Context())
	project := r.PathValue("project")
	isNew := r.PostFormValue("new") == "1"
	spec, name := scriptFromForm(r)
	if name == "" {
		c.showScriptForm(w, r, http.StatusBadRequest, client.Script{Project: project, Description: spec.Description, Image: spec.Image,
			Interpreter: spec.Interpreter, Body: spec.Body, Variables: spec.Variables, Credentials: spec.Credentials, ServiceAccount: spec.ServiceAccount},
			isNew, "Give the script a name: lowercase letters, digits and dashes.")
		return
	}
	if isNew {
		if _, err := s.api.GetScript(r.Context(), project, name); err == nil {
			c.showScriptForm(w, r, http.StatusConflict, scriptOf(project, name, spec), isNew,
				"A script named "+name+" exists already: pick another name, or edit that one.")
			return
		}
	}
	if _, err := s.api.PutScript(r.Context(), project, name, spec); err != nil {
		var ae *client.Error
		if errors.As(err, &ae) && ae.Status < 500 && ae.Status != http.StatusUnauthorized && ae.Status != http.StatusForbidden {
			c.showScriptForm(w, r, ae.Status, scriptOf(project, name, spec), isNew, sentence(ae.Message))
			return
		}
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, scriptHref(project, name)+"?done=saved", http.StatusSeeOther)
}

func scriptOf(project, name string, spec client.ScriptSpec) client.Script {
	return client.Script{Project: project, Name: name, Description: spec.Description, Image: spec.Image, Interpreter: spec.Interpreter,
		Body: spec.Body, Variables: spec.Variables, Credentials: spec.Credentials, ServiceAccount: spec.ServiceAccount}
}

// scriptFromForm reads the edit form. A sensitive variable whose default
// field is left empty keeps its stored default (the platform never sends
// it back, so the form cannot show it).
func scriptFromForm(r *http.Request) (client.ScriptSpec, string) {
	f := r.PostForm
	spec := client.ScriptSpec{
		Description:    strings.TrimSpace(f.Get("description")),
		Image:          strings.TrimSpace(f.Get("image")),
		Interpreter:    f.Get("interpreter"),
		Body:           strings.ReplaceAll(f.Get("body"), "\r\n", "\n"),
		ServiceAccount: strings.TrimSpace(f.Get("service_account")),
		Variables:      []client.Variable{},
		Credentials:    []client.Credential{},
	}
	names, defaults := f["var_name"], f["var_default"]
	for i, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		v := client.Variable{Name: n}
		if i < len(defaults) {
			v.Default = defaults[i]
		}
		idx := strings.TrimSpace(f["var_index"][min(i, len(f["var_index"])-1)])
		v.Required = f.Get("var_required_"+idx) == "on"
		v.Sensitive = f.Get("var_sensitive_"+idx) == "on"
		if v.Sensitive && v.Default == "" && f.Get("var_keep_"+idx) == "1" {
			v.DefaultSet = true
		}
		spec.Variables = append(spec.Variables, v)
	}
	for _, line := range strings.Split(f.Get("credentials"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		secret, keys, _ := strings.Cut(line, ":")
		cr := client.Credential{Secret: strings.TrimSpace(secret)}
		for _, k := range strings.Split(keys, ",") {
			if k = strings.TrimSpace(k); k != "" {
				cr.Keys = append(cr.Keys, k)
			}
		}
		spec.Credentials = append(spec.Credentials, cr)
	}
	return spec, strings.TrimSpace(f.Get("name"))
}

func (c *Console) runPage(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r.Context())
	project, name, id := r.PathValue("project"), r.PathValue("script"), r.PathValue("run")
	run, err := s.api.GetRun(r.Context(), project, name, id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "run", "Run "+run.ID, map[string]any{"Run": run, "Href": scriptHref(project, name),
		"CanReadLogs": roleRank(c.role(r, project, "")) >= roleRank(client.RoleApplier)},
		crumb{"Projects", "/"}, crumb{project, projectHref(project)}, crumb{name, scriptHref(project, name)})
}
