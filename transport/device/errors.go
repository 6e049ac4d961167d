package device

import (
	"context"
	"errors"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/version"
	"github.com/tallyhq/tally/transport/deviceproto"
)

// protoError is an error the handler answers a request with.
type protoError struct {
	code string
	msg  string
}

func (e *protoError) Error() string { return e.msg }

func newError(code, msg string) *protoError { return &protoError{code: code, msg: msg} }

// errorFor maps an error to the code and message sent to the device. It is
// the one place that decides codes for store errors.
func errorFor(err error) *protoError {
	var pe *protoError
	if errors.As(err, &pe) {
		return pe
	}
	msg := oneLine(err.Error())
	switch {
	case errors.Is(err, errShuttingDown):
		return newError(deviceproto.CodeShuttingDown, msg)
	case errors.Is(err, core.ErrNotApplied), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return newError(deviceproto.CodeNotApplied, "the request was not completed; it is safe to retry: "+msg)
	case errors.Is(err, core.ErrUnknownKey):
		return newError(deviceproto.CodeUnknownKey, "no first-authentication key has this secret (it may have been deleted)")
	case errors.Is(err, core.ErrKeyInactive):
		return newError(deviceproto.CodeKeyInactive, "the first-authentication key is inactive; an administrator must activate it")
	case errors.Is(err, core.ErrKeyUsed):
		return newError(deviceproto.CodeKeyUsed, "the one-time key has already onboarded another device")
	case errors.Is(err, core.ErrKeyNotForDevice):
		return newError(deviceproto.CodeKeyNotForDevice, "the one-time key was made for another device")
	case errors.Is(err, core.ErrAlreadyOnboarded):
		return newError(deviceproto.CodeAlreadyOnboarded, "the device is already onboarded with another key; an administrator must drop it first")
	case errors.Is(err, core.ErrSuperseded):
		return newError(deviceproto.CodeSuperseded, "a later connection of this device has asked for the feature since; the request changed nothing: say hello again to go on here")
	case errors.Is(err, core.ErrUnknownDevice):
		return newError(deviceproto.CodeUnknownDevice, msg)
	case errors.Is(err, core.ErrInvalidDevice):
		return newError(deviceproto.CodeInvalidDevice, msg)
	case errors.Is(err, core.ErrInvalidFeature), errors.Is(err, core.ErrUnknownFeature):
		return newError(deviceproto.CodeInvalidFeature, msg)
	case errors.Is(err, version.ErrInvalid):
		return newError(deviceproto.CodeInvalidVersion, msg)
	case errors.Is(err, core.ErrInvalidCount):
		return newError(deviceproto.CodeInvalidCount, msg)
	case errors.Is(err, core.ErrInvalidCommand), errors.Is(err, core.ErrInvalidRequest):
		return newError(deviceproto.CodeInvalidRequest, msg)
	}
	return newError(deviceproto.CodeInternal, "internal error")
}

// denialName gives each core.DenialReason its stable protocol name.
func denialName(r core.DenialReason) string {
	switch r {
	case core.DenyNoSuchFeature:
		return deviceproto.DenyNoSuchFeature
	case core.DenyNoSuchVersion:
		return deviceproto.DenyNoSuchVersion
	case core.DenyNotActive:
		return deviceproto.DenyNotActive
	case core.DenyInsufficient:
		return deviceproto.DenyInsufficient
	case core.DenyModel:
		return deviceproto.DenyModel
	case core.DenyNotOnboarded:
		return deviceproto.DenyNotOnboarded
	}
	return deviceproto.DenyOther
}

// oneLine keeps the first line of a message, bounded.
func oneLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' || s[i] == '\r' {
			s = s[:i]
			break
		}
	}
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
