package admin

import (
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// spec is the part of openapi.yaml the test reads.
type spec struct {
	Paths      map[string]map[string]yaml.Node `yaml:"paths"`
	Components struct {
		Parameters    map[string]param   `yaml:"parameters"`
		RequestBodies map[string]body    `yaml:"requestBodies"`
		Responses     map[string]body    `yaml:"responses"`
		Schemas       map[string]*schema `yaml:"schemas"`
	} `yaml:"components"`
}

type param struct {
	Ref  string `yaml:"$ref"`
	Name string `yaml:"name"`
	In   string `yaml:"in"`
}

type body struct {
	Ref     string `yaml:"$ref"`
	Content map[string]struct {
		Schema *schema `yaml:"schema"`
	} `yaml:"content"`
}

type operation struct {
	Parameters  []param         `yaml:"parameters"`
	RequestBody *body           `yaml:"requestBody"`
	Responses   map[string]body `yaml:"responses"`
}

type schema struct {
	Ref        string             `yaml:"$ref"`
	Type       string             `yaml:"type"`
	Format     string             `yaml:"format"`
	Properties map[string]*schema `yaml:"properties"`
	Items      *schema            `yaml:"items"`
}

func loadSpec(t *testing.T) *spec {
	t.Helper()
	data, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var s spec
	if err := yaml.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func (s *spec) schema(sc *schema) *schema {
	for sc != nil && sc.Ref != "" {
		sc = s.Components.Schemas[strings.TrimPrefix(sc.Ref, "#/components/schemas/")]
	}
	return sc
}

func (s *spec) body(b *body) *body {
	if b != nil && b.Ref != "" {
		name := b.Ref[strings.LastIndex(b.Ref, "/")+1:]
		if strings.HasPrefix(b.Ref, "#/components/requestBodies/") {
			rb := s.Components.RequestBodies[name]
			return &rb
		}
		rb := s.Components.Responses[name]
		return &rb
	}
	return b
}

func (s *spec) param(p param) param {
	if p.Ref != "" {
		return s.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]
	}
	return p
}

// TestOpenAPIMatchesTheServer: every route the server serves is in
// openapi.yaml with the same query parameters and the same fields in its
// request and response bodies, recursively, and the file has nothing more.
func TestOpenAPIMatchesTheServer(t *testing.T) {
	s := loadSpec(t)
	srv := NewServer(Options{})
	served := map[string]Route{}
	for _, r := range srv.Routes() {
		served[r.Method+" "+r.Path] = r
	}
	var inSpec []string
	for path, item := range s.Paths {
		var shared []param
		if n, ok := item["parameters"]; ok {
			if err := n.Decode(&shared); err != nil {
				t.Fatal(err)
			}
		}
		for method, n := range item {
			if method == "parameters" {
				continue
			}
			key := strings.ToUpper(method) + " " + path
			inSpec = append(inSpec, key)
			var op operation
			if err := n.Decode(&op); err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			r, ok := served[key]
			if !ok {
				t.Errorf("openapi.yaml has %s, which the server does not serve", key)
				continue
			}
			checkOperation(t, s, key, r, append(shared, op.Parameters...), op)
		}
	}
	for key := range served {
		if !slices.Contains(inSpec, key) {
			t.Errorf("the server serves %s, which openapi.yaml lacks", key)
		}
	}
	errSchema := s.schema(s.body(&body{Ref: "#/components/responses/Error"}).Content["application/json"].Schema)
	compare(t, s, "Error", errSchema, reflect.TypeFor[Error]())
}

func checkOperation(t *testing.T, s *spec, key string, r Route, params []param, op operation) {
	var query, pathParams []string
	for _, p := range params {
		p = s.param(p)
		switch p.In {
		case "query":
			query = append(query, p.Name)
		case "path":
			pathParams = append(pathParams, p.Name)
		}
	}
	sort.Strings(query)
	want := slices.Clone(r.Query)
	sort.Strings(want)
	if !slices.Equal(query, want) {
		t.Errorf("%s: query parameters %v in openapi.yaml, %v served", key, query, want)
	}
	for _, p := range pathParams {
		if !strings.Contains(r.Path, "{"+p+"}") {
			t.Errorf("%s: path parameter %s is not in the path", key, p)
		}
	}
	for rest := r.Path; strings.Contains(rest, "{"); {
		_, rest, _ = strings.Cut(rest, "{")
		var p string
		p, rest, _ = strings.Cut(rest, "}")
		if !slices.Contains(pathParams, p) {
			t.Errorf("%s: the path's {%s} is not a path parameter in openapi.yaml", key, p)
		}
	}
	switch rb := s.body(op.RequestBody); {
	case rb == nil && r.Request != nil:
		t.Errorf("%s: takes a %s body that openapi.yaml does not describe", key, r.Request)
	case rb != nil && r.Request == nil:
		t.Errorf("%s: openapi.yaml describes a request body the server does not take", key)
	case rb != nil:
		compare(t, s, key+" request", s.schema(rb.Content["application/json"].Schema), r.Request)
	}
	ok := s.body(ptrTo(op.Responses["200"]))
	if ok == nil || ok.Content["application/json"].Schema == nil {
		t.Errorf("%s: no 200 response schema", key)
		return
	}
	compare(t, s, key+" response", s.schema(ok.Content["application/json"].Schema), r.Response)
	for code, resp := range op.Responses {
		if code == "200" {
			continue
		}
		if sc := s.body(&resp).Content["application/json"].Schema; s.schema(sc) != s.Components.Schemas["Error"] {
			t.Errorf("%s: response %s is not an Error", key, code)
		}
	}
}

func ptrTo(b body) *body { return &b }

var timeType = reflect.TypeFor[time.Time]()

// compare checks that sc describes Go type typ: the same JSON fields,
// each of the matching kind.
func compare(t *testing.T, s *spec, where string, sc *schema, typ reflect.Type) {
	t.Helper()
	if sc == nil {
		t.Errorf("%s: no schema for %s", where, typ)
		return
	}
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	kind := map[reflect.Kind]string{reflect.String: "string", reflect.Int64: "integer", reflect.Int: "integer",
		reflect.Bool: "boolean", reflect.Struct: "object", reflect.Slice: "array"}[typ.Kind()]
	if typ == timeType {
		kind = "string"
		if sc.Format != "date-time" {
			t.Errorf("%s: a time without format date-time", where)
		}
	}
	if sc.Type != kind {
		t.Errorf("%s: type %q in openapi.yaml, %q (%s) served", where, sc.Type, kind, typ)
		return
	}
	switch {
	case typ.Kind() == reflect.Slice:
		compare(t, s, where+"[]", s.schema(sc.Items), typ.Elem())
	case typ.Kind() == reflect.Struct && typ != timeType:
		fields := map[string]reflect.Type{}
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if f.IsExported() && name != "-" {
				fields[name] = f.Type
			}
		}
		for name, ft := range fields {
			prop, ok := sc.Properties[name]
			if !ok {
				t.Errorf("%s: field %s is served but not in openapi.yaml", where, name)
				continue
			}
			compare(t, s, where+"."+name, s.schema(prop), ft)
		}
		for name := range sc.Properties {
			if _, ok := fields[name]; !ok {
				t.Errorf("%s: openapi.yaml has field %s, which is not served", where, name)
			}
		}
	}
}
