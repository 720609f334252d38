package schemaregistry_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/streams"
	"github.com/tradex-mesh/tradex/streams/schemaregistry"
)

func TestHandlerServesSubjectsVersionsAndIDs(t *testing.T) {
	t.Parallel()
	idx := build(t, publishedJetStream(t))
	base := serve(t, idx)
	subject := streams.TopicEngineEvent + schemaregistry.SubjectSuffix
	want, _ := idx.Version(subject, schemaregistry.Latest)

	var subjects []string
	get(t, base+"/subjects", &subjects)
	if !slices.Equal(subjects, idx.Subjects()) {
		t.Errorf("GET /subjects = %v, want %v", subjects, idx.Subjects())
	}
	var versions []int
	get(t, base+"/subjects/"+subject+"/versions", &versions)
	if !slices.Equal(versions, []int{want.Version}) {
		t.Errorf("versions = %v, want [%d]", versions, want.Version)
	}
	for _, v := range []string{"latest", "-1", fmt.Sprint(want.Version)} {
		var got schemaregistry.SubjectVersion
		get(t, base+"/subjects/"+subject+"/versions/"+v, &got)
		if got.Subject != subject || got.Version != want.Version || got.ID != want.ID ||
			got.SchemaType != "PROTOBUF" || got.Schema.Schema != want.Schema.Schema ||
			!slices.Equal(got.References, want.References) {
			t.Errorf("version %s = %+v, want %+v", v, got, want)
		}
	}
	var byID struct {
		SchemaType string                     `json:"schemaType"`
		Schema     string                     `json:"schema"`
		References []schemaregistry.Reference `json:"references"`
	}
	get(t, fmt.Sprintf("%s/schemas/ids/%d", base, want.ID), &byID)
	if byID.SchemaType != "PROTOBUF" || byID.Schema != want.Schema.Schema || !slices.Equal(byID.References, want.References) {
		t.Errorf("schema by id = %+v, want %+v", byID, want.Schema)
	}
	r := request(t, http.MethodGet, fmt.Sprintf("%s/schemas/ids/%d/schema", base, want.ID), testUser, testPassword)
	if r.status != http.StatusOK || string(r.body) != want.Schema.Schema {
		t.Errorf("schema text = %d %q", r.status, r.body)
	}
	// A reference's subject holds a slash; clients escape it.
	ref := want.References[0]
	var dep schemaregistry.SubjectVersion
	get(t, fmt.Sprintf("%s/subjects/%s/versions/%d", base, url.PathEscape(ref.Subject), ref.Version), &dep)
	if dep.Subject != ref.Subject || dep.Version != ref.Version || !strings.Contains(dep.Schema.Schema, "package ") {
		t.Errorf("reference %+v = %+v", ref, dep)
	}
}

func TestHandlerAnswersConfluentErrors(t *testing.T) {
	t.Parallel()
	base := serve(t, catalogIndex(t))
	subject := streams.TopicEngineEvent + schemaregistry.SubjectSuffix
	cases := []struct {
		name, method, path string
		status, code       int
		message            string
	}{
		{"unknown subject", http.MethodGet, "/subjects/no.such.v1-value/versions", 404, 40401, "Subject not found."},
		{"unknown subject version", http.MethodGet, "/subjects/no.such.v1-value/versions/1", 404, 40401, "Subject not found."},
		{"unknown version", http.MethodGet, "/subjects/" + subject + "/versions/999", 404, 40402, "Version not found."},
		{"invalid version", http.MethodGet, "/subjects/" + subject + "/versions/first", 422, 42202, ""},
		{"version zero", http.MethodGet, "/subjects/" + subject + "/versions/0", 422, 42202, ""},
		{"unknown id", http.MethodGet, "/schemas/ids/1", 404, 40403, "Schema not found"},
		{"unknown id text", http.MethodGet, "/schemas/ids/1/schema", 404, 40403, "Schema not found"},
		{"id not a number", http.MethodGet, "/schemas/ids/abc", 404, 40403, "Schema not found"},
		{"unknown path", http.MethodGet, "/config", 404, 404, "HTTP 404 Not Found"},
		{"register", http.MethodPost, "/subjects/" + subject + "/versions", 405, 405, "HTTP 405 Method Not Allowed"},
		{"delete", http.MethodDelete, "/subjects/" + subject, 405, 405, "HTTP 405 Method Not Allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := request(t, c.method, base+c.path, testUser, testPassword)
			assertError(t, r, c.status, c.code, c.message)
		})
	}
}

func TestHandlerRefusesRequestsWithoutTheCredentials(t *testing.T) {
	t.Parallel()
	base := serve(t, catalogIndex(t))
	cases := []struct{ name, user, password string }{
		{"no credentials", "", ""},
		{"wrong password", testUser, "guess"},
		{"wrong user", "admin", testPassword},
		{"password prefix", testUser, testPassword[:4]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				r := request(t, method, base+"/subjects", c.user, c.password)
				assertError(t, r, http.StatusUnauthorized, 401, "Unauthorized")
				if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic ") {
					t.Errorf("%s: WWW-Authenticate = %q", method, r.header.Get("WWW-Authenticate"))
				}
			}
		})
	}
}

// assertError checks a Confluent error answer; an empty message is not
// compared.
func assertError(t *testing.T, r response, status, code int, message string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != schemaregistry.ContentType {
		t.Errorf("Content-Type %q", ct)
	}
	var body struct {
		ErrorCode int    `json:"error_code"`
		Message   string `json:"message"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	if body.ErrorCode != code || (message != "" && body.Message != message) {
		t.Errorf("body %s, want error_code %d message %q", r.body, code, message)
	}
}

func TestHandlerFollowsTheLiveIndex(t *testing.T) {
	t.Parallel()
	js := publishedJetStream(t)
	live, err := schemaregistry.Open(t.Context(), js)
	if err != nil {
		t.Fatal(err)
	}
	runLive(t, live)
	base := serve(t, live)
	subject := streams.TopicEngineEvent + schemaregistry.SubjectSuffix
	var before schemaregistry.SubjectVersion
	get(t, base+"/subjects/"+subject+"/versions/latest", &before)

	version := changeEngineEventSchema(t, js)
	var after schemaregistry.SubjectVersion
	pollLatest(t, base+"/subjects/"+subject+"/versions/latest", version, &after)
	if after.ID == before.ID {
		t.Fatalf("the new version kept id %d", after.ID)
	}
	var old struct {
		Schema string `json:"schema"`
	}
	get(t, fmt.Sprintf("%s/schemas/ids/%d", base, before.ID), &old)
	if old.Schema != before.Schema.Schema {
		t.Errorf("old id %d no longer serves its schema", before.ID)
	}
	var versions []int
	get(t, base+"/subjects/"+subject+"/versions", &versions)
	if !slices.Equal(versions, []int{before.Version, after.Version}) {
		t.Errorf("versions %v", versions)
	}
}

// pollLatest polls url until it serves version, decoded into out.
func pollLatest(t *testing.T, url string, version int, out *schemaregistry.SubjectVersion) {
	t.Helper()
	polltest.Until(t, "the handler serves the new version", func() error {
		get(t, url, out)
		if out.Version != version {
			return fmt.Errorf("latest is version %d, want %d", out.Version, version)
		}
		return nil
	})
}
