package transport

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/licensingid"
	"github.com/tallyhq/tally/core/model"
	"github.com/tallyhq/tally/core/password"
	"github.com/tallyhq/tally/core/version"
	"github.com/tallyhq/tally/transport/discovery"
)

// apiError is the one error type of the API: an HTTP status, a snake_case
// code that clients branch on, and a one-line message for people. Handlers
// return it for what the transport itself refuses (bad JSON, paging, content
// type); everything else goes through errorFor.
type apiError struct {
	status int
	code   string
	msg    string
	// line and column place an error in an uploaded text (a license
	// model); 0 when it has no place.
	line, column int
}

func (e *apiError) Error() string { return e.msg }

// errorBody is the JSON form of every error response. Line and Column
// (1-based) are set for an error at a place in an uploaded text.
type errorBody struct {
	Error  string `json:"error"`
	Code   string `json:"code"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
}

func badRequest(code, msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: code, msg: msg}
}

// rightsRefused marks an error from RightsVerifier.Verify so that errorFor
// can tell a refused rights file (400 bad_rights) from a fault of the server.
type rightsRefused struct{ err error }

func (e *rightsRefused) Error() string { return e.err.Error() }
func (e *rightsRefused) Unwrap() error { return e.err }

// The transport's own refusals of the discovery routes. Handlers wrap them
// with the detail; errorFor maps them.
var (
	// errNotAvailable: this node has no discovery responder, or no socket
	// for magic packets (503 not_available).
	errNotAvailable = errors.New("not available on this node")
	// errScanRunning: a scan is already running (409 scan_running).
	errScanRunning = errors.New("a scan is already running")
	// errBadTarget: a scan target that is not an IP, IP:PORT or CIDR
	// (400 bad_target).
	errBadTarget = errors.New("bad scan target")
	// errTooManyTargets: a scan over more addresses than one may walk
	// (400 too_many_targets).
	errTooManyTargets = errors.New("too many scan targets")
	// errBadTimeout: a scan timeout out of range (400 bad_timeout).
	errBadTimeout = errors.New("bad timeout")
	// errNotWakeable: a wake request for a device without an ETHERNET
	// hostid (400 not_wakeable).
	errNotWakeable = errors.New("not wakeable")
	// errSendFailed: no magic packet or invitation could be sent (503
	// send_failed).
	errSendFailed = errors.New("sending failed")
	// errNotDiscovered: an invitation for a device no scan found (404
	// not_discovered).
	errNotDiscovered = errors.New("device not discovered")
)

// errorFor maps any error to the API error it is answered with. It is the
// only place that decides status codes for errors: core sentinels by
// errors.Is, then the transport's own parse errors, then refused rights
// files; a model's *model.ParseError adds its line and column. Anything it
// does not know is a 500 with a generic message; the caller logs the
// detail.
func errorFor(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	msg := oneLine(err.Error())
	status, code := http.StatusInternalServerError, "internal"
	switch {
	case errors.Is(err, core.ErrNotApplied):
		status, code = http.StatusServiceUnavailable, "not_applied"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		status, code = http.StatusServiceUnavailable, "not_applied"
		msg = "the request was not completed in time; it is safe to retry"

	// The key errors come before ErrInvalidCommand, which some of them
	// wrap as well.
	case errors.Is(err, core.ErrInvalidKey):
		status, code = http.StatusBadRequest, "invalid_key"
	case errors.Is(err, core.ErrInvalidClientKey):
		status, code = http.StatusBadRequest, "invalid_client_key"
	case errors.Is(err, core.ErrUnknownKey):
		status, code = http.StatusNotFound, "unknown_key"
	case errors.Is(err, core.ErrKeyExists):
		status, code = http.StatusConflict, "key_exists"
	case errors.Is(err, core.ErrDuplicateKeySecret):
		status, code = http.StatusConflict, "duplicate_key_secret"
	case errors.Is(err, core.ErrKeyUsed):
		status, code = http.StatusConflict, "key_used"
	case errors.Is(err, core.ErrKeyInactive):
		status, code = http.StatusConflict, "key_inactive"
	case errors.Is(err, core.ErrKeyNotForDevice):
		status, code = http.StatusConflict, "key_not_for_device"
	case errors.Is(err, core.ErrAlreadyOnboarded):
		status, code = http.StatusConflict, "already_onboarded"
	case errors.Is(err, licensingid.ErrWrongPassword), errors.Is(err, core.ErrBackupPassword):
		status, code = http.StatusBadRequest, "wrong_password"
	case errors.Is(err, licensingid.ErrDamaged), errors.Is(err, core.ErrBackupDamaged):
		status, code = http.StatusBadRequest, "damaged_backup"

	case errors.Is(err, core.ErrInvalidCommand):
		status, code = http.StatusBadRequest, "invalid_command"
	case errors.Is(err, core.ErrInvalidRequest):
		status, code = http.StatusBadRequest, "invalid_request"
	case errors.Is(err, core.ErrInvalidFeature):
		status, code = http.StatusBadRequest, "invalid_feature"
	case errors.Is(err, core.ErrInvalidCount):
		status, code = http.StatusBadRequest, "invalid_count"
	case errors.Is(err, core.ErrInvalidDevice):
		status, code = http.StatusBadRequest, "invalid_device"
	case errors.Is(err, core.ErrInvalidModel):
		status, code = http.StatusBadRequest, "invalid_model"
	case errors.Is(err, core.ErrInvalidReserve):
		status, code = http.StatusBadRequest, "invalid_reservation"
	case errors.Is(err, core.ErrInvalidProperty):
		status, code = http.StatusBadRequest, "invalid_property"
	case errors.Is(err, core.ErrInvalidSnapshot):
		status, code = http.StatusBadRequest, "invalid_snapshot"
	case errors.Is(err, core.ErrInvalidUser):
		status, code = http.StatusBadRequest, "invalid_user"
	case errors.Is(err, password.ErrWeakPassword):
		status, code = http.StatusBadRequest, "weak_password"

	case errors.Is(err, core.ErrUnknownCommand):
		status, code = http.StatusNotFound, "unknown_command"
	case errors.Is(err, core.ErrUnknownFeature):
		status, code = http.StatusNotFound, "unknown_feature"
	case errors.Is(err, core.ErrUnknownFeatureVer):
		status, code = http.StatusNotFound, "unknown_feature_version"
	case errors.Is(err, core.ErrUnknownDevice):
		status, code = http.StatusNotFound, "unknown_device"
	case errors.Is(err, core.ErrUnknownRights):
		status, code = http.StatusNotFound, "unknown_rights"
	case errors.Is(err, core.ErrUnknownGroup):
		status, code = http.StatusNotFound, "unknown_group"
	case errors.Is(err, core.ErrUnknownProperty):
		status, code = http.StatusNotFound, "unknown_property"
	case errors.Is(err, core.ErrUnknownUser):
		status, code = http.StatusNotFound, "unknown_user"

	case errors.Is(err, core.ErrStaleRights):
		status, code = http.StatusConflict, "stale_rights"
	case errors.Is(err, core.ErrModelExclusive):
		status, code = http.StatusConflict, "model_exclusive"
	case errors.Is(err, core.ErrOverAllocated):
		status, code = http.StatusConflict, "over_allocated"
	case errors.Is(err, core.ErrPropertyLocked):
		status, code = http.StatusConflict, "property_locked"
	case errors.Is(err, core.ErrConflictingLock):
		status, code = http.StatusConflict, "conflicting_lock"
	case errors.Is(err, core.ErrUserExists):
		status, code = http.StatusConflict, "user_exists"
	case errors.Is(err, core.ErrLastAdmin):
		status, code = http.StatusConflict, "last_admin"

	case errors.Is(err, core.ErrDropNotAllowed):
		status, code = http.StatusForbidden, "drop_not_allowed"

	case errors.Is(err, errNotAvailable):
		status, code = http.StatusServiceUnavailable, "not_available"
	case errors.Is(err, errSendFailed):
		status, code = http.StatusServiceUnavailable, "send_failed"
	case errors.Is(err, core.ErrSyncOutOfOrder):
		status, code = http.StatusConflict, "out_of_order"
	case errors.Is(err, core.ErrSyncReplay):
		status, code = http.StatusConflict, "replayed"
	case errors.Is(err, core.ErrInvalidActivation):
		status, code = http.StatusBadRequest, "invalid_activation"
	case errors.Is(err, core.ErrInvalidUsage):
		status, code = http.StatusBadRequest, "invalid_usage"
	case errors.Is(err, core.ErrUnknownJoinToken):
		status, code = http.StatusNotFound, "unknown_join_token"
	case errors.Is(err, core.ErrJoinTokenUsed):
		status, code = http.StatusForbidden, "join_token_used"
	case errors.Is(err, core.ErrJoinLevel):
		status, code = http.StatusConflict, "release_too_old"
	case errors.Is(err, core.ErrJoinTokenExpired):
		status, code = http.StatusForbidden, "join_token_expired"
	case errors.Is(err, core.ErrInvalidJoinToken):
		status, code = http.StatusBadRequest, "invalid_join_token"
	case errors.Is(err, core.ErrJoinTokenExists):
		status, code = http.StatusConflict, "join_token_exists"
	case errors.Is(err, core.ErrClusterCAExists), errors.Is(err, core.ErrInvalidClusterCA):
		status, code = http.StatusConflict, "cluster_ca"
	case errors.Is(err, errNotDiscovered):
		status, code = http.StatusNotFound, "not_discovered"
	case errors.Is(err, errScanRunning):
		status, code = http.StatusConflict, "scan_running"
	case errors.Is(err, errBadTarget):
		status, code = http.StatusBadRequest, "bad_target"
	case errors.Is(err, errTooManyTargets):
		status, code = http.StatusBadRequest, "too_many_targets"
	case errors.Is(err, errBadTimeout):
		status, code = http.StatusBadRequest, "bad_timeout"
	case errors.Is(err, errNotWakeable), errors.Is(err, discovery.ErrBadMAC):
		status, code = http.StatusBadRequest, "not_wakeable"

	case errors.As(err, new(*responseRefused)):
		status, code = http.StatusBadRequest, "bad_response"
	case errors.As(err, new(*rightsRefused)):
		status, code = http.StatusBadRequest, "bad_rights"
	case errors.Is(err, hostid.ErrUnknownType), errors.Is(err, hostid.ErrInvalidValue):
		status, code = http.StatusBadRequest, "bad_hostid"
	case errors.Is(err, version.ErrInvalid):
		status, code = http.StatusBadRequest, "bad_version"
	}
	if status == http.StatusInternalServerError {
		msg = "internal server error"
	}
	ae = &apiError{status: status, code: code, msg: msg}
	// A model that does not parse is refused at its line and column.
	var pe *model.ParseError
	if status != http.StatusInternalServerError && errors.As(err, &pe) {
		ae.line, ae.column = pe.Line, pe.Col
	}
	return ae
}

// oneLine folds a multi-line message (a model parse error, say) into one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(slices.DeleteFunc(lines, func(l string) bool { return l == "" }), "; ")
}
