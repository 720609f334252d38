package schemaregistry

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
)

// ContentType is the media type of every response.
const ContentType = "application/vnd.schemaregistry.v1+json"

// Confluent's error codes.
const (
	codeUnauthorized     = 401
	codeNotFound         = 404
	codeMethodNotAllowed = 405
	codeSubjectNotFound  = 40401
	codeVersionNotFound  = 40402
	codeSchemaNotFound   = 40403
	codeInvalidVersion   = 42202
	codeBackend          = 50001
)

// handler serves the read side of the Confluent Schema Registry API.
type handler struct {
	src              Source
	user, password   []byte
	logger           *slog.Logger
	mux              *http.ServeMux
	authenticateHint string
}

// NewHandler serves the read-only subset of the Confluent Schema Registry
// REST API that serializers and deserializers use, from src's current
// index:
//
//	GET /subjects
//	GET /subjects/{subject}/versions
//	GET /subjects/{subject}/versions/{version}   (a number or "latest")
//	GET /schemas/ids/{id}
//	GET /schemas/ids/{id}/schema                 (the schema text alone)
//
// Every request must carry HTTP Basic credentials equal to username and
// password. Errors have Confluent's bodies ({"error_code":40401,
// "message":"Subject not found."}); other methods get 405. Options:
// WithLogger.
func NewHandler(src Source, username, password string, opts ...Option) (http.Handler, error) {
	if username == "" || password == "" {
		return nil, fmt.Errorf("schema registry handler: %w", ErrNoCredentials)
	}
	c := newConfig(opts)
	h := &handler{src: src, user: []byte(username), password: []byte(password), logger: c.logger,
		mux: http.NewServeMux(), authenticateHint: `Basic realm="tradex schema registry", charset="UTF-8"`}
	h.mux.HandleFunc("GET /subjects", h.subjects)
	h.mux.HandleFunc("GET /subjects/{subject}/versions", h.versions)
	h.mux.HandleFunc("GET /subjects/{subject}/versions/{version}", h.version)
	h.mux.HandleFunc("GET /schemas/ids/{id}", h.schema)
	h.mux.HandleFunc("GET /schemas/ids/{id}/schema", h.schemaText)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, codeNotFound, "HTTP 404 Not Found")
	})
	return h, nil
}

// ServeHTTP authenticates the request, refuses methods other than GET and
// HEAD, and routes it.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", h.authenticateHint)
		writeError(w, http.StatusUnauthorized, codeUnauthorized, "Unauthorized")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, codeMethodNotAllowed, "HTTP 405 Method Not Allowed")
		return
	}
	h.mux.ServeHTTP(w, r)
}

// authorized compares the request's Basic credentials with the
// configured ones in constant time.
func (h *handler) authorized(r *http.Request) bool {
	user, password, ok := r.BasicAuth()
	if !ok {
		return false
	}
	userOK := subtle.ConstantTimeCompare([]byte(user), h.user)
	passwordOK := subtle.ConstantTimeCompare([]byte(password), h.password)
	return userOK&passwordOK == 1
}

func (h *handler) subjects(w http.ResponseWriter, r *http.Request) {
	h.write(w, r, h.src.Current().Subjects())
}

func (h *handler) versions(w http.ResponseWriter, r *http.Request) {
	vs, err := h.src.Current().Versions(r.PathValue("subject"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.write(w, r, vs)
}

func (h *handler) version(w http.ResponseWriter, r *http.Request) {
	version, ok := parseVersion(r.PathValue("version"))
	if !ok {
		writeError(w, http.StatusUnprocessableEntity, codeInvalidVersion, fmt.Sprintf(
			"The specified version '%s' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"",
			r.PathValue("version")))
		return
	}
	sv, err := h.src.Current().Version(r.PathValue("subject"), version)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.write(w, r, sv)
}

// parseVersion reads "latest", -1 (Confluent's alias of it) or a version
// from 1 to 2^31-1.
func parseVersion(s string) (int, bool) {
	if s == "latest" {
		return Latest, true
	}
	v, err := strconv.Atoi(s)
	if err != nil || v == 0 || v < Latest || v > math.MaxInt32 {
		return 0, false
	}
	return v, true
}

// idResponse is the body of GET /schemas/ids/{id}.
type idResponse struct {
	SchemaType string      `json:"schemaType"`
	Schema     string      `json:"schema"`
	References []Reference `json:"references,omitempty"`
}

func (h *handler) schema(w http.ResponseWriter, r *http.Request) {
	s, err := h.schemaOf(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.write(w, r, idResponse{SchemaType: s.SchemaType, Schema: s.Schema, References: s.References})
}

func (h *handler) schemaText(w http.ResponseWriter, r *http.Request) {
	s, err := h.schemaOf(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", ContentType)
	if _, err := w.Write([]byte(s.Schema)); err != nil {
		h.logger.DebugContext(r.Context(), "schema registry response not written", "error", err)
	}
}

// schemaOf looks up the schema of the request's id.
func (h *handler) schemaOf(r *http.Request) (Schema, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 32)
	if err != nil {
		return Schema{}, fmt.Errorf("%w: id %q", ErrSchemaNotFound, r.PathValue("id"))
	}
	return h.src.Current().SchemaByID(int32(id))
}

// fail answers a look-up error with its Confluent code.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrSubjectNotFound):
		writeError(w, http.StatusNotFound, codeSubjectNotFound, "Subject not found.")
	case errors.Is(err, ErrVersionNotFound):
		writeError(w, http.StatusNotFound, codeVersionNotFound, "Version not found.")
	case errors.Is(err, ErrSchemaNotFound):
		writeError(w, http.StatusNotFound, codeSchemaNotFound, "Schema not found")
	default:
		h.logger.ErrorContext(r.Context(), "schema registry request failed", "path", r.URL.Path, "error", err)
		writeError(w, http.StatusInternalServerError, codeBackend, "Error in the backend data store")
	}
}

// write answers v as JSON.
func (h *handler) write(w http.ResponseWriter, r *http.Request, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		h.fail(w, r, fmt.Errorf("encode response: %w", err))
		return
	}
	w.Header().Set("Content-Type", ContentType)
	if _, err := w.Write(body); err != nil {
		h.logger.DebugContext(r.Context(), "schema registry response not written", "error", err)
	}
}

// errorBody is Confluent's error response.
type errorBody struct {
	ErrorCode int    `json:"error_code"`
	Message   string `json:"message"`
}

// writeError answers with a Confluent error body.
func writeError(w http.ResponseWriter, status, code int, message string) {
	body, _ := json.Marshal(errorBody{ErrorCode: code, Message: message}) //nolint:errchkjson // an int and a string always encode
	w.Header().Set("Content-Type", ContentType)
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client is gone: nothing to do
}
