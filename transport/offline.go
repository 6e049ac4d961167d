package transport

import (
	"fmt"
	"net/http"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/capability"
)

// Offline capability exchange: the administrator downloads the capability
// request (starting one when none is pending), or one that asks for an
// activation, carries it to the back office, and uploads the response it
// answered with. The request is signed here with the main licensing ID;
// the response is checked against the trusted producer keys (Config
// Capability) and then by core (it must answer the pending request and be
// newer than any applied), so a tampered, replayed, foreign or
// out-of-order response is refused and changes nothing.

const (
	// maxActivationBody bounds the body of an activation request.
	maxActivationBody     = 16 << 10
	capabilityRequestFile = "capability-request-%d.bin"
)

// responseRefused marks a capability response whose signature, server or
// form was refused (400 bad_response).
type responseRefused struct{ err error }

func (e *responseRefused) Error() string { return e.err.Error() }
func (e *responseRefused) Unwrap() error { return e.err }

// CapabilityVerifier checks capability responses for this server.
type CapabilityVerifier interface {
	VerifyResponse(data []byte) (capability.Response, error)
}

// requireCapability refuses the offline routes on a server without a
// verifier.
func (s *Server) requireCapability() error {
	if s.cfg.Capability == nil {
		return fmt.Errorf("%w: no producer keys are trusted on this node", errNotAvailable)
	}
	return nil
}

// signedPending returns the pending capability request signed with the
// main licensing ID, beginning one with begin when none is pending or
// begin asks for activations.
func (s *Server) signedPending(r *http.Request, begin *core.BeginSync) ([]byte, uint64, error) {
	pending, err := core.PendingSyncOf(r.Context(), s.cfg.Store, func() error { return s.apply(r, begin) }, len(begin.Activations) > 0)
	if err != nil {
		return nil, 0, err
	}
	id := s.cfg.Identity
	b, err := capability.SignRequest(id.Key, id.Certificate, capability.NewRequest(id.Certificate, pending), s.cfg.Random)
	return b, pending.Sequence, err
}

func (s *Server) downloadCapabilityRequest(w http.ResponseWriter, r *http.Request) error {
	b, seq, err := s.signedPending(r, &core.BeginSync{})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Disposition", `attachment; filename="`+fmt.Sprintf(capabilityRequestFile, seq)+`"`)
	writeRaw(w, http.StatusOK, mediaBinary, b)
	return nil
}

// activationRequest is the body of POST /api/v1/offline/activation.
type activationRequest struct {
	ActivationID string `json:"activationId"`
	Count        *int64 `json:"count"`
}

func (s *Server) requestActivation(w http.ResponseWriter, r *http.Request) error {
	var req activationRequest
	if err := readJSON(w, r, maxActivationBody, &req); err != nil {
		return err
	}
	if req.Count == nil {
		return badRequest("bad_json", `field "count" is required (0 gives the counts back)`)
	}
	act := []core.Activation{{ActivationID: req.ActivationID, Count: *req.Count}}
	if err := core.ValidateActivations(act); err != nil {
		return err
	}
	b, seq, err := s.signedPending(r, &core.BeginSync{Activations: act})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Disposition", `attachment; filename="`+fmt.Sprintf(capabilityRequestFile, seq)+`"`)
	writeRaw(w, http.StatusOK, mediaBinary, b)
	return nil
}

// offlineStatus answers GET /api/v1/offline/status: the exchange with the
// back office as core keeps it, the pending request's content in brief,
// and the connector that exchanges online.
type offlineStatus struct {
	// Connector is the property backoffice.connector: the connector the
	// leader exchanges requests through, "" when only files are.
	Connector string `json:"connector"`
	core.SyncStatus
	// PendingWindows counts the usage windows the pending request
	// carries; PendingActivations are the activations it asks for.
	PendingWindows     int               `json:"pendingWindows"`
	PendingActivations []core.Activation `json:"pendingActivations,omitempty"`
}

func (s *Server) offlineStatus(w http.ResponseWriter, r *http.Request) error {
	var out offlineStatus
	err := s.cfg.Store.Read(r.Context(), func(st *core.State) error {
		out.SyncStatus = st.SyncStatus()
		if pending, ok := st.PendingSync(); ok {
			out.PendingWindows, out.PendingActivations = len(pending.Windows), pending.Activations
		}
		p, err := st.Property("backoffice.connector")
		if err != nil {
			return err
		}
		out.Connector = p.Value
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// offlineResponseResult answers an uploaded response.
type offlineResponseResult struct {
	Sequence        uint64                  `json:"sequence"`
	RequestSequence uint64                  `json:"requestSequence"`
	Lines           int                     `json:"lines"`
	UsageAck        uint64                  `json:"usageAck"`
	Activations     []core.ActivationResult `json:"activations"`
}

func (s *Server) uploadCapabilityResponse(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireCapability(); err != nil {
		return err
	}
	data, err := readBody(w, r, capability.MaxBytes, mediaBinary)
	if err != nil {
		return err
	}
	resp, err := s.cfg.Capability.VerifyResponse(data)
	if err != nil {
		return &responseRefused{err}
	}
	if err := s.apply(r, resp.CompleteSync(core.DefaultSyncSource)); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, offlineResponseResult{Sequence: resp.Sequence, RequestSequence: resp.RequestSequence,
		Lines: len(resp.Lines), UsageAck: resp.UsageAck, Activations: resp.Activations})
	return nil
}
