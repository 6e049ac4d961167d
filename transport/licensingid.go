package transport

import (
	"net/http"
)

// licensingIDResponse is the answer of GET /api/v1/licensing-id: the main
// licensing ID and, per server, its status.
type licensingIDResponse struct {
	Display     string              `json:"display"`
	ID          string              `json:"id"`
	Fingerprint string              `json:"fingerprint"`
	Servers     []licensingIDServer `json:"servers"`
}

// licensingIDServer is one server's row of the licensing ID status.
type licensingIDServer struct {
	Host         string `json:"host"`
	ServerStatus string `json:"serverStatus"` // Running, Not running
	IDStatus     string `json:"idStatus"`     // Main licensing ID, in sync, not in sync
	Display      string `json:"display"`
	Fingerprint  string `json:"fingerprint"`
}

// licensingIDCertFile is the name an exported licensing ID certificate is saved
// under.
const licensingIDCertFile = "licensing-id.cert"

// licensingID answers the licensing ID status. A single node's own ID is the
// main one.
func (s *Server) licensingID(w http.ResponseWriter, r *http.Request) error {
	id := s.cfg.Identity
	writeJSON(w, http.StatusOK, licensingIDResponse{
		Display: id.Display(), ID: id.String(), Fingerprint: id.Fingerprint(),
		Servers: []licensingIDServer{{
			Host: s.cfg.Hostname, ServerStatus: "Running", IDStatus: "Main licensing ID",
			Display: id.Display(), Fingerprint: id.Fingerprint(),
		}},
	})
	return nil
}

// licensingIDCert answers the main licensing ID's certificate as a PEM
// file to save.
func (s *Server) licensingIDCert(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Disposition", `attachment; filename="`+licensingIDCertFile+`"`)
	writeRaw(w, http.StatusOK, "application/x-pem-file", s.cfg.Identity.CertificatePEM())
	return nil
}
