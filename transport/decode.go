package transport

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/tallyhq/tally/core/strictjson"
)

// Limits on request bodies. A body past its limit is refused with 413.
const (
	maxLoginBody        = 4 << 10
	maxUserBody         = 4 << 10
	maxPropertyBody     = 64 << 10
	maxReservationsBody = 16 << 20
	maxModelBody        = 1 << 20
	maxRightsBody       = 32 << 20
)

// Paging limits.
const (
	maxPageSize     = 1000
	defaultPageSize = 20 // when server.pageSize cannot be read as a number
)

// Media types the API reads.
const (
	mediaJSON   = "application/json"
	mediaText   = "text/plain"
	mediaBinary = "application/octet-stream"
)

// checkContentType refuses a body whose Content-Type is missing, malformed,
// not one of allowed, or in a charset other than UTF-8 (415).
func checkContentType(r *http.Request, allowed ...string) error {
	want := strings.Join(allowed, " or ")
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return &apiError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type", msg: "Content-Type is missing; want " + want}
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return &apiError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type", msg: fmt.Sprintf("Content-Type %q is malformed; want %s", ct, want)}
	}
	if !slices.Contains(allowed, mt) {
		return &apiError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type", msg: fmt.Sprintf("Content-Type %s is not accepted here; want %s", mt, want)}
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return &apiError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type", msg: fmt.Sprintf("charset %s is not accepted; want utf-8", cs)}
	}
	return nil
}

// readBody reads a request body of at most limit bytes after checking its
// content type.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, allowed ...string) ([]byte, error) {
	if err := checkContentType(r, allowed...); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			return nil, &apiError{status: http.StatusRequestEntityTooLarge, code: "too_large", msg: fmt.Sprintf("request body is larger than %d bytes", limit)}
		}
		return nil, badRequest("bad_body", "reading the request body: "+err.Error())
	}
	return data, nil
}

// readJSON reads a JSON body into v strictly: one value, no unknown fields,
// no trailing data.
func readJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	data, err := readBody(w, r, limit, mediaJSON)
	if err != nil {
		return err
	}
	return decodeJSON(data, v)
}

// decodeJSON decodes exactly one JSON value from data into v, refusing
// unknown fields and anything after the value.
func decodeJSON(data []byte, v any) error {
	if err := strictjson.Unmarshal(data, v); err != nil {
		return badRequest("bad_json", describeJSONError(err))
	}
	return nil
}

func describeJSONError(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, strictjson.ErrTrailingData):
		return "malformed JSON: data after the JSON value"
	case errors.Is(err, io.EOF):
		return "malformed JSON: the body is empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: the body ends too early"
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON at byte %d: %s", syntax.Offset, syntax.Error())
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %q wants %s, not JSON %s", typ.Field, typ.Type, typ.Value)
		}
		return fmt.Sprintf("the body wants %s, not JSON %s", typ.Type, typ.Value)
	}
	return "malformed JSON: " + strings.TrimPrefix(oneLine(err.Error()), "json: ")
}

// pageRequest is the page a list request asks for; size 0 means the
// server.pageSize property.
type pageRequest struct {
	page, size int
}

// parsePage reads the page and pageSize query parameters.
func parsePage(q url.Values) (pageRequest, error) {
	p := pageRequest{page: 1}
	if v, ok := q["page"]; ok {
		n, err := strconv.Atoi(lastValue(v))
		if err != nil || n < 1 {
			return p, badRequest("bad_paging", fmt.Sprintf("page %q is not a whole number of at least 1", lastValue(v)))
		}
		p.page = n
	}
	if v, ok := q["pageSize"]; ok {
		n, err := strconv.Atoi(lastValue(v))
		if err != nil || n < 1 || n > maxPageSize {
			return p, badRequest("bad_paging", fmt.Sprintf("pageSize %q is not a whole number from 1 to %d", lastValue(v), maxPageSize))
		}
		p.size = n
	}
	return p, nil
}

func lastValue(v []string) string { return v[len(v)-1] }

// pagedList is the JSON form of a page of a list.
type pagedList[T any] struct {
	Total    int `json:"total"`
	Page     int `json:"page"`
	PageSize int `json:"pageSize"`
	Items    []T `json:"items"`
}

// pageOf cuts one page out of items; a page past the end is empty.
func pageOf[T any](items []T, p pageRequest) pagedList[T] {
	out := pagedList[T]{Total: len(items), Page: p.page, PageSize: p.size, Items: []T{}}
	if p.page-1 >= (len(items)+p.size-1)/p.size {
		return out
	}
	start := (p.page - 1) * p.size
	end := min(start+p.size, len(items))
	out.Items = append(out.Items, items[start:end]...)
	return out
}
