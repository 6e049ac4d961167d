package transport

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/tallyhq/tally/core/licensingid"
)

// backupRequestBody is the JSON of a restore request for a backup of id
// under password.
func backupRequestBody(t testing.TB, id *licensingid.ID, password string) string {
	t.Helper()
	data, err := licensingid.Backup(id, []byte(password), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return restoreBody(t, data, password)
}

func restoreBody(t testing.TB, backup []byte, password string) string {
	t.Helper()
	b, err := json.Marshal(map[string]string{"password": password, "backup": base64.StdEncoding.EncodeToString(backup)})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// restoredIDs records what the server handed to RestoreIdentity.
type restoredIDs struct {
	mu  sync.Mutex
	ids []*licensingid.ID
}

func (r *restoredIDs) keep(id *licensingid.ID) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids = append(r.ids, id)
	return nil
}

func (r *restoredIDs) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ids)
}

func TestLicensingIDBackupRestore(t *testing.T) {
	restored := &restoredIDs{}
	e := newTestEnv(t, func(c *Config) { c.RestoreIdentity = restored.keep })
	const ct = "application/json"
	for _, body := range []string{`{}`, `{"password":"short"}`, `{"password":"` + strings.Repeat("p", 257) + `"}`, `{"password":1}`} {
		r := e.do("POST", "/api/v1/licensing-id/backup", ct, body, true)
		if r.status != http.StatusBadRequest {
			t.Errorf("backup %s: %d %s", body, r.status, r.body)
		}
	}

	const pw = "backup password"
	r := e.do("POST", "/api/v1/licensing-id/backup", ct, `{"password":"`+pw+`"}`, true)
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/octet-stream" ||
		r.header.Get("Content-Disposition") != `attachment; filename="licensing-id.tallyid"` {
		t.Fatalf("backup: %d %v %q", r.status, r.header, r.body)
	}
	backup := r.body
	if !strings.Contains(e.logs.String(), "licensing ID backed up") || !strings.Contains(e.logs.String(), "user=admin") {
		t.Errorf("the backup is not logged with its user:\n%s", e.logs)
	}

	// Refused: nothing is handed on, and the state is as it was.
	for _, c := range []struct {
		name, body string
		code       string
	}{
		{"wrong password", restoreBody(t, backup, "not the password"), "wrong_password"},
		{"truncated", restoreBody(t, backup[:len(backup)-1], pw), "damaged_backup"},
		{"flipped bit", restoreBody(t, append(append([]byte{}, backup[:70]...), append([]byte{backup[70] ^ 1}, backup[71:]...)...), pw), "damaged_backup"},
		{"empty", restoreBody(t, nil, pw), "damaged_backup"},
		{"not base64", `{"password":"x","backup":"***"}`, "bad_json"},
		{"no password", `{"backup":"AAAA"}`, "bad_json"},
		{"empty password", `{"password":"","backup":"AAAA"}`, "bad_json"},
		{"unknown field", `{"password":"x","backup":"AAAA","force":true}`, "bad_json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.wantRefused(t, "POST", "/api/v1/licensing-id/restore", ct, c.body, http.StatusBadRequest, c.code)
			if restored.count() != 0 {
				t.Fatal("a refused backup was restored")
			}
		})
	}
	if !strings.Contains(e.logs.String(), "licensing ID restore refused") {
		t.Errorf("refused restores are not logged:\n%s", e.logs)
	}

	// The server's own backup restores to the same ID.
	r = e.do("POST", "/api/v1/licensing-id/restore", ct, restoreBody(t, backup, pw), true)
	var answer restoreResponse
	r.json(t, &answer)
	if r.status != http.StatusOK || answer.Fingerprint != e.id.Fingerprint() || answer.RestartRequired {
		t.Fatalf("restore of the running ID: %d %s", r.status, r.body)
	}
	if restored.count() != 1 || !restored.ids[0].Key.Equal(e.id.Key) {
		t.Fatal("RestoreIdentity did not get the backed-up ID")
	}

	// Another server's ID restores, and takes effect at the next start.
	other := testIdentity(t)
	r = e.do("POST", "/api/v1/licensing-id/restore", ct, backupRequestBody(t, other, "other password"), true)
	answer = restoreResponse{}
	r.json(t, &answer)
	if r.status != http.StatusOK || answer.Fingerprint != other.Fingerprint() || !answer.RestartRequired {
		t.Fatalf("restore of another ID: %d %s", r.status, r.body)
	}
	if !strings.Contains(e.logs.String(), "restart tallyd to use it") {
		t.Errorf("the restore is not logged:\n%s", e.logs)
	}
	// The running server goes on with its own ID.
	var id licensingIDResponse
	e.do("GET", "/api/v1/licensing-id", "", "", true).json(t, &id)
	if id.Fingerprint != e.id.Fingerprint() {
		t.Errorf("the running server changed its ID to %s", id.Fingerprint)
	}
}

func TestRestoreUnsupported(t *testing.T) {
	e := newTestEnv(t)
	wantError(t, e.do("POST", "/api/v1/licensing-id/restore", "application/json", `{"password":"x","backup":"AAAA"}`, true),
		http.StatusNotImplemented, "not_supported")
}
