package transport

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/tallyhq/tally/core"
)

// Limits of an audit log page.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

// auditResponse is the answer of GET /api/v1/audit: records after a
// sequence number, oldest first, the number of records the log holds, and
// whether the whole hash chain verifies.
type auditResponse struct {
	Total    int                `json:"total"`
	Items    []core.AuditRecord `json:"items"`
	Verified bool               `json:"verified"`
}

func (s *Server) readAudit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var after uint64
	limit := defaultAuditLimit
	if v, ok := q["after"]; ok {
		n, err := strconv.ParseUint(lastValue(v), 10, 64)
		if err != nil {
			return badRequest("bad_paging", fmt.Sprintf("after %q is not a sequence number", lastValue(v)))
		}
		after = n
	}
	if v, ok := q["limit"]; ok {
		n, err := strconv.Atoi(lastValue(v))
		if err != nil || n < 1 || n > maxAuditLimit {
			return badRequest("bad_paging", fmt.Sprintf("limit %q is not a whole number from 1 to %d", lastValue(v), maxAuditLimit))
		}
		limit = n
	}
	var out auditResponse
	err := s.cfg.Store.Read(r.Context(), func(st *core.State) error {
		out.Items = st.Audit(after, limit)
		out.Total = st.AuditCount()
		out.Verified = st.VerifyAudit() == nil
		return nil
	})
	if err != nil {
		return err
	}
	if !out.Verified {
		s.log.Error("the audit log does not verify")
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
