package core

import (
	"fmt"
	"slices"
)

// RestoreBackup replaces the state with a database backup: the bytes of an
// earlier Snapshot. Rights, devices and their leases, reservations, the
// license model, properties, users, first-authentication keys and the audit
// log come back as the backup held them. Five things do not go back: the
// clock (leases that ended since the backup end at once), the request
// sessions (so that retries stay deduplicated across the restore), the
// main licensing ID, which is the installation's identity rather than data,
// the cluster CA and join tokens, which belong to the running cluster, and
// the exchange with the back office. Of that, every sequence becomes the
// higher of the running cluster's and the backup's, so no capability
// response refused before the restore is accepted after it; the usage the
// running cluster has not reported stays; and the backup adds only usage
// windows under IDs the running cluster has not given, which a backup of
// its own past never has (see keepSyncAcross). So a restore loses no usage,
// reports none twice and accepts no replay. The rights a response loaded
// come back as the backup held them, like all rights; the next response
// replaces them. A backup that does not restore is refused and nothing
// changes.
type RestoreBackup struct {
	Snapshot []byte `json:"snapshot"`
}

func (*RestoreBackup) Type() string { return "restoreBackup" }

// maxBackupBytes leaves room in a request for the encoding around it.
const maxBackupBytes = MaxRequestBytes / 2

func (c *RestoreBackup) validate() error {
	if len(c.Snapshot) == 0 {
		return fmt.Errorf("%w: the backup is empty", ErrInvalidSnapshot)
	}
	if len(c.Snapshot) > maxBackupBytes {
		return fmt.Errorf("%w: the backup is %d bytes, at most %d", ErrInvalidSnapshot, len(c.Snapshot), maxBackupBytes)
	}
	return nil
}

func (s *State) restoreBackup(c *RestoreBackup) (Result, error) {
	r, err := Restore(s.cfg, c.Snapshot)
	if err != nil {
		return Result{}, err
	}
	sync, err := keepSyncAcross(s.sync, r.sync, r.now)
	if err != nil {
		return Result{}, err
	}
	now := s.now
	if r.now.After(now) {
		now = r.now
	}
	sessions, sessionOrder, nextSweep, mainID := s.sessions, s.sessionOrder, s.nextSweep, s.mainID
	ca, joinTokens := s.clusterCA, s.joinTokens
	// The level and the numbers of the devices' connections are the
	// running cluster's: connected devices go on with the connections they
	// have, and an older backup does not lower the level.
	level := max(s.level, r.level)
	for id, d := range r.devices {
		if cur := s.devices[id]; cur != nil {
			d.conn, d.asked = cur.conn, slices.Clone(cur.asked)
		}
	}
	*s = *r
	s.level = level
	s.now, s.sessions, s.sessionOrder, s.nextSweep = now, sessions, sessionOrder, nextSweep
	// The licensing ID is the installation's identity, not data: a backup
	// from before it was restored or replaced must not bring an old one back.
	s.mainID = mainID
	// The CA and join tokens are the running cluster's: a backup from
	// another cluster, or from before a token was used, must not bring
	// theirs back.
	s.clusterCA, s.joinTokens = ca, joinTokens
	s.sync = sync
	var res Result
	s.advance(&res)
	return res, nil
}
