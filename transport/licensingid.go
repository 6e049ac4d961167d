package transport

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/licensingid"
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
// main one. In a cluster every member says which local ID it has and which
// ID it signs with: the member whose local ID is the main one shows "Main
// licensing ID", one that signs with the main ID "in sync", and one that
// does not (or does not answer) "not in sync".
func (s *Server) licensingID(w http.ResponseWriter, r *http.Request) error {
	id := s.cfg.Identity
	resp := licensingIDResponse{
		Display: id.Display(), ID: id.String(), Fingerprint: id.Fingerprint(),
		Servers: []licensingIDServer{{
			Host: s.cfg.Hostname, ServerStatus: "Running", IDStatus: "Main licensing ID",
			Display: id.Display(), Fingerprint: id.Fingerprint(),
		}},
	}
	if s.cfg.Cluster != nil {
		members, err := s.cfg.Cluster.ClusterMembers(r.Context())
		if err != nil {
			return err
		}
		resp.Servers = resp.Servers[:0]
		for _, m := range members {
			row := licensingIDServer{Host: m.Info[core.InfoHost], ServerStatus: "Not running", IDStatus: "not in sync",
				Display: m.Info[core.InfoLocalIDDisplay], Fingerprint: m.Info[core.InfoLocalID]}
			if row.Host == "" {
				row.Host = m.ID
			}
			if m.Reachable {
				row.ServerStatus = "Running"
				switch {
				case m.Info[core.InfoLocalID] == id.Fingerprint():
					row.IDStatus = "Main licensing ID"
				case m.Info[core.InfoSigningID] == id.Fingerprint():
					row.IDStatus = "in sync"
				}
			}
			resp.Servers = append(resp.Servers, row)
		}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// licensingIDCert answers the main licensing ID's certificate as a PEM
// file to save.
func (s *Server) licensingIDCert(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Disposition", `attachment; filename="`+licensingIDCertFile+`"`)
	writeRaw(w, http.StatusOK, "application/x-pem-file", s.cfg.Identity.CertificatePEM())
	return nil
}

// Limits of the licensing ID backup routes.
const (
	maxBackupRequestBody = 4 << 10
	// maxRestoreBody holds a backup (at most 64 KiB and its framing) in
	// base64 and a password.
	maxRestoreBody        = 128 << 10
	minBackupPassword     = 8
	maxBackupPassword     = 256
	licensingIDBackupFile = "licensing-id.tallyid"
)

// backupRequest is the body of POST /api/v1/licensing-id/backup.
type backupRequest struct {
	Password *string `json:"password"`
}

// restoreRequest is the body of POST /api/v1/licensing-id/restore: the
// backup file in standard base64 and its password.
type restoreRequest struct {
	Password *string `json:"password"`
	Backup   *string `json:"backup"`
}

// restoreResponse is the answer to a restored licensing ID. The running
// node keeps its ID until tallyd restarts.
type restoreResponse struct {
	Fingerprint     string `json:"fingerprint"`
	RestartRequired bool   `json:"restartRequired"`
}

// backupLicensingID answers the main licensing ID encrypted under the
// password, as a file to save. Exporting the key changes no state, so it
// is not in the audit log; it is logged with the caller and address.
func (s *Server) backupLicensingID(w http.ResponseWriter, r *http.Request) error {
	var req backupRequest
	if err := readJSON(w, r, maxBackupRequestBody, &req); err != nil {
		return err
	}
	if req.Password == nil {
		return badRequest("bad_json", `the body wants "password"`)
	}
	if n := len(*req.Password); n < minBackupPassword || n > maxBackupPassword {
		return badRequest("weak_password", fmt.Sprintf("the backup password has %d bytes; want %d to %d", n, minBackupPassword, maxBackupPassword))
	}
	var data []byte
	err := s.withBackupKDF(r.Context(), func() error {
		var err error
		data, err = licensingid.Backup(s.cfg.Identity, []byte(*req.Password), s.cfg.Random)
		return err
	})
	if err != nil {
		return err
	}
	p := principalOf(r)
	s.log.Info("licensing ID backed up", "fingerprint", s.cfg.Identity.Fingerprint(), "user", p.user.Name, "remote", p.address)
	w.Header().Set("Content-Disposition", `attachment; filename="`+licensingIDBackupFile+`"`)
	writeRaw(w, http.StatusOK, mediaBinary, data)
	return nil
}

// restoreLicensingID decrypts a backup and hands the ID to
// Config.RestoreIdentity, which keeps it for the next start. A wrong
// password or a damaged file is refused before anything is written. It is
// logged with the caller and address, refused or not.
func (s *Server) restoreLicensingID(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.RestoreIdentity == nil {
		return &apiError{status: http.StatusNotImplemented, code: "not_supported", msg: "this server cannot restore a licensing ID"}
	}
	var req restoreRequest
	if err := readJSON(w, r, maxRestoreBody, &req); err != nil {
		return err
	}
	if req.Password == nil || req.Backup == nil {
		return badRequest("bad_json", `the body wants "password" and "backup"`)
	}
	if n := len(*req.Password); n < 1 || n > maxBackupPassword {
		return badRequest("bad_json", fmt.Sprintf("the backup password has %d bytes; want 1 to %d", n, maxBackupPassword))
	}
	data, err := base64.StdEncoding.DecodeString(*req.Backup)
	if err != nil {
		return badRequest("bad_json", `"backup" is not standard base64`)
	}
	p := principalOf(r)
	var id *licensingid.ID
	err = s.withBackupKDF(r.Context(), func() error {
		var err error
		id, err = licensingid.Restore(data, []byte(*req.Password))
		return err
	})
	if err == nil {
		err = s.cfg.RestoreIdentity(id)
	}
	if err != nil {
		s.log.Info("licensing ID restore refused", "user", p.user.Name, "remote", p.address, "err", err)
		return err
	}
	current := s.cfg.Identity.Fingerprint()
	s.log.Info("licensing ID restored; restart tallyd to use it", "fingerprint", id.Fingerprint(), "running", current,
		"user", p.user.Name, "remote", p.address)
	writeJSON(w, http.StatusOK, restoreResponse{Fingerprint: id.Fingerprint(), RestartRequired: id.Fingerprint() != current})
	return nil
}

// withBackupKDF runs fn, which derives a backup key, while holding the
// one slot for it: a backup's key derivation may ask for up to 1 GiB.
func (s *Server) withBackupKDF(ctx context.Context, fn func() error) error {
	select {
	case s.backupKDF <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.backupKDF }()
	return fn()
}
