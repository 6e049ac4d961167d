package transport

import (
	"net/http"

	"github.com/tallyhq/tally/core"
)

// Database backups. A backup is the whole replicated state as core's
// Snapshot writes it: rights, devices and leases, reservations, the model,
// properties, users (with password hashes), first-authentication keys, the
// audit log and the main licensing ID. It is as secret as the data
// directory. Restoring one puts everything back but the clock, the request
// sessions and the main licensing ID (core.RestoreBackup), and is audited.

const (
	databaseBackupFile = "tally-backup.json"
	// maxDatabaseBackup bounds a backup upload; core refuses larger ones.
	maxDatabaseBackup = core.MaxRequestBytes / 2
)

// createBackup answers the state as a backup file. It is logged with the
// caller and address, as it carries secrets.
func (s *Server) createBackup(w http.ResponseWriter, r *http.Request) error {
	var data []byte
	err := s.cfg.Store.Read(r.Context(), func(st *core.State) error {
		var err error
		data, err = st.Snapshot()
		return err
	})
	if err != nil {
		return err
	}
	p := principalOf(r)
	s.log.Info("database backed up", "bytes", len(data), "user", p.user.Name, "remote", p.address)
	w.Header().Set("Content-Disposition", `attachment; filename="`+databaseBackupFile+`"`)
	writeRaw(w, http.StatusOK, mediaBinary, data)
	return nil
}

// restoreBackup replaces the state with an uploaded backup. A file that
// does not restore is refused and nothing changes.
func (s *Server) restoreBackup(w http.ResponseWriter, r *http.Request) error {
	data, err := readBody(w, r, maxDatabaseBackup, mediaBinary, mediaJSON)
	if err != nil {
		return err
	}
	return s.applyNoContent(w, r, &core.RestoreBackup{Snapshot: data})
}
