package transport

import (
	"fmt"
	"net/http"

	"github.com/tallyhq/tally/core"
)

// Database backups. A backup is the whole replicated state as core's
// Snapshot writes it: rights, devices and leases, reservations, the model,
// properties, users (with password hashes), first-authentication keys, the
// audit log and the main licensing ID. It is as secret as the data
// directory: GET answers it as it is, POST with a password sealed under it
// (core.SealBackup). Restoring one, sealed or not (a sealed one with its
// password in the Tally-Backup-Password header), puts everything back but
// the clock, the request sessions and the main licensing ID
// (core.RestoreBackup), and is audited.

const (
	databaseBackupFile = "tally-backup.json"
	sealedBackupFile   = "tally-backup.tallydb"
	// backupPasswordHeader carries a sealed backup's password to restore.
	backupPasswordHeader = "Tally-Backup-Password"
	// maxDatabaseBackup bounds a backup upload; core refuses larger ones.
	maxDatabaseBackup = core.MaxRequestBytes / 2
	// sealedBackupOverhead is what sealing adds to a backup.
	sealedBackupOverhead = 1 << 10
)

// createBackup answers the state as a backup file. It is logged with the
// caller and address, as it carries secrets.
func (s *Server) createBackup(w http.ResponseWriter, r *http.Request) error {
	data, err := s.snapshot(r)
	if err != nil {
		return err
	}
	s.sendBackup(w, r, data, databaseBackupFile, "database backed up")
	return nil
}

// createSealedBackup answers the state as a backup file sealed under the
// password of the request, {"password": "..."}.
func (s *Server) createSealedBackup(w http.ResponseWriter, r *http.Request) error {
	var req backupRequest
	if err := readJSON(w, r, maxBackupRequestBody, &req); err != nil {
		return err
	}
	if req.Password == nil {
		return badRequest("bad_json", `the body wants "password"`)
	}
	if n := len(*req.Password); n < core.MinBackupPassword || n > core.MaxBackupPassword {
		return badRequest("weak_password", fmt.Sprintf("the backup password has %d bytes; want %d to %d", n, core.MinBackupPassword, core.MaxBackupPassword))
	}
	data, err := s.snapshot(r)
	if err != nil {
		return err
	}
	err = s.withBackupKDF(r.Context(), func() error {
		var err error
		data, err = core.SealBackup(data, []byte(*req.Password), s.cfg.Random)
		return err
	})
	if err != nil {
		return err
	}
	s.sendBackup(w, r, data, sealedBackupFile, "database backed up, sealed")
	return nil
}

// sendBackup answers a backup file, logged with the caller and address.
func (s *Server) sendBackup(w http.ResponseWriter, r *http.Request, data []byte, file, msg string) {
	p := principalOf(r)
	s.log.Info(msg, "bytes", len(data), "user", p.user.Name, "remote", p.address)
	w.Header().Set("Content-Disposition", `attachment; filename="`+file+`"`)
	writeRaw(w, http.StatusOK, mediaBinary, data)
}

// snapshot reads the state's snapshot.
func (s *Server) snapshot(r *http.Request) ([]byte, error) {
	var data []byte
	err := s.cfg.Store.Read(r.Context(), func(st *core.State) error {
		var err error
		data, err = st.Snapshot()
		return err
	})
	return data, err
}

// restoreBackup replaces the state with an uploaded backup. A file that
// does not restore is refused and nothing changes.
func (s *Server) restoreBackup(w http.ResponseWriter, r *http.Request) error {
	data, err := readBody(w, r, maxDatabaseBackup+sealedBackupOverhead, mediaBinary, mediaJSON)
	if err != nil {
		return err
	}
	pw := r.Header.Get(backupPasswordHeader)
	switch sealed := core.IsSealedBackup(data); {
	case sealed && pw == "":
		return badRequest("sealed_backup", "the backup is sealed: send its password in the "+backupPasswordHeader+" header")
	case !sealed && pw != "":
		return badRequest("invalid_snapshot", "the backup is not sealed; send it without a password")
	case sealed:
		err := s.withBackupKDF(r.Context(), func() error {
			var err error
			data, err = core.OpenBackup(data, []byte(pw))
			return err
		})
		if err != nil {
			return err
		}
		defer clear(data)
	}
	return s.applyNoContent(w, r, &core.RestoreBackup{Snapshot: data})
}
