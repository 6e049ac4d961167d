package main

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tallyhq/tally/core/hostid"
)

// fakeBackupPrefix starts the fake server's licensing ID backups; the rest
// is the password, so that a restore can tell a wrong one.
const fakeBackupPrefix = "TALLYIDB fake backup under "

// fakeDatabaseBackup is what the fake server answers for a database backup
// and takes back to restore.
const fakeDatabaseBackup = `{"format":"fake snapshot","users":[{"name":"admin","hash":"$argon2id$secret"}]}`

var keyCreated = time.Date(2025, 3, 14, 10, 0, 0, 0, time.UTC)

// addKeyRoutes serves the first-authentication keys, the client key and
// the licensing ID backup from the fake server's memory.
func (f *fakeServer) addKeyRoutes(authed func(string, func(http.ResponseWriter, *http.Request))) {
	f.keys = []firstAuthKey{
		{ID: "k-0001", Type: "ONE_TIME", Secret: "ABCDE-FGHJK-LMNPQ-RST23", Description: "line 4", State: "ACTIVE", Created: keyCreated},
		{ID: "k-0002", Type: "ONE_TIME", Secret: "ZZZZZ-YYYYY-XXXXX-WWW45", State: "USED", Created: keyCreated,
			UsedBy: hostid.HostID{Value: "00:11:22:aa:bb:cc", Type: hostid.Ethernet}, UsedAt: keyCreated.Add(time.Hour), Uses: 1},
		{ID: "k-0003", Type: "MASS", Secret: "fleet password", Description: "fleet", State: "INACTIVE", Created: keyCreated},
	}
	find := func(id string) int {
		for i, k := range f.keys {
			if k.ID == id {
				return i
			}
		}
		return -1
	}
	authed("GET /api/v1/keys", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f.mu.Lock()
		var items []firstAuthKey
		for _, k := range f.keys {
			if t := q.Get("type"); t != "" && t != k.Type || q.Get("state") != "" && strings.ToUpper(q.Get("state")) != k.State {
				continue
			}
			k.Shown = q.Get("show") == "true"
			if !k.Shown {
				k.Secret = "••••" + k.Secret[len(k.Secret)-2:]
			}
			items = append(items, k)
		}
		f.mu.Unlock()
		writePage(w, r, items)
	})
	authed("POST /api/v1/keys", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Type        string  `json:"type"`
			Count       int     `json:"count"`
			Description string  `json:"description"`
			Secret      *string `json:"secret"`
		}
		json.Unmarshal([]byte(f.body("POST /api/v1/keys")), &in)
		f.mu.Lock()
		defer f.mu.Unlock()
		n := in.Count
		if in.Type == "MASS" {
			n = 1
		}
		if n < 1 || n > 10000 {
			writeError(w, 400, fmt.Sprintf("invalid first-authentication key: count %d, want 1 to 10000", n), "invalid_key")
			return
		}
		var made []firstAuthKey
		for i := range n {
			k := firstAuthKey{ID: fmt.Sprintf("k-%04d", len(f.keys)+1), Type: in.Type, Secret: fmt.Sprintf("NEWKY-SECRT-%05d-XY%03d", len(f.keys)+1, i),
				Shown: true, Description: in.Description, State: "ACTIVE", Created: keyCreated}
			if in.Secret != nil {
				for _, old := range f.keys {
					if old.Secret == *in.Secret {
						writeError(w, 409, "another first-authentication key has this secret", "duplicate_key_secret")
						return
					}
				}
				k.Secret = *in.Secret
			}
			f.keys = append(f.keys, k)
			made = append(made, k)
		}
		writeJSON(w, 201, map[string]any{"total": len(made), "items": made})
	})
	authed("PUT /api/v1/keys/{id}", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Active      *bool   `json:"active"`
			Description *string `json:"description"`
		}
		json.Unmarshal([]byte(f.body("PUT "+r.URL.EscapedPath())), &in)
		f.mu.Lock()
		defer f.mu.Unlock()
		i := find(r.PathValue("id"))
		switch {
		case i < 0:
			writeError(w, 404, "unknown first-authentication key "+r.PathValue("id"), "unknown_key")
			return
		case in.Active != nil && f.keys[i].State == "USED":
			writeError(w, 409, "one-time key is already used: "+r.PathValue("id")+" onboarded ETHERNET:00:11:22:aa:bb:cc", "key_used")
			return
		}
		if in.Active != nil {
			f.keys[i].State = map[bool]string{true: "ACTIVE", false: "INACTIVE"}[*in.Active]
		}
		if in.Description != nil {
			f.keys[i].Description = *in.Description
		}
		k := f.keys[i]
		k.Secret = "••••" + k.Secret[len(k.Secret)-2:]
		writeJSON(w, 200, k)
	})
	authed("DELETE /api/v1/keys/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		i := find(r.PathValue("id"))
		if i < 0 {
			writeError(w, 404, "unknown first-authentication key "+r.PathValue("id"), "unknown_key")
			return
		}
		f.keys = append(f.keys[:i], f.keys[i+1:]...)
		w.WriteHeader(http.StatusNoContent)
	})

	describe := func(w http.ResponseWriter, der []byte) {
		if der == nil {
			writeJSON(w, 200, map[string]any{"present": false})
			return
		}
		sum := sha256.Sum256(der)
		writeJSON(w, 200, map[string]any{"present": true, "bits": 2048, "fingerprint": strings.ToUpper(hex.EncodeToString(sum[:]))})
	}
	authed("GET /api/v1/client-key", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		describe(w, f.clientKey)
	})
	authed("POST /api/v1/client-key", func(w http.ResponseWriter, r *http.Request) {
		der := []byte(f.body("POST /api/v1/client-key"))
		if r.Header.Get("Content-Type") != "application/octet-stream" {
			writeError(w, 415, "want application/octet-stream", "unsupported_media_type")
			return
		}
		pub, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			pub, err = x509.ParsePKCS1PublicKey(der)
		}
		rk, ok := pub.(*rsa.PublicKey)
		if err != nil || !ok || rk.N.BitLen() != 2048 {
			writeError(w, 400, "invalid client key: want a 2048-bit RSA public key", "invalid_client_key")
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.clientKey = der
		describe(w, der)
	})

	authed("GET /api/v1/backup", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write([]byte(fakeDatabaseBackup))
	})
	authed("POST /api/v1/backup/restore", func(w http.ResponseWriter, r *http.Request) {
		if f.body("POST /api/v1/backup/restore") != fakeDatabaseBackup {
			writeError(w, 400, "invalid snapshot: not a backup", "invalid_snapshot")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	authed("POST /api/v1/licensing-id/backup", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Password string }
		json.Unmarshal([]byte(f.body("POST /api/v1/licensing-id/backup")), &in)
		if len(in.Password) < 8 {
			writeError(w, 400, "the backup password has 5 bytes; want 8 to 256", "weak_password")
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="licensing-id.tallyid"`)
		w.Write([]byte(fakeBackupPrefix + in.Password))
	})
	authed("POST /api/v1/licensing-id/restore", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Password, Backup string }
		json.Unmarshal([]byte(f.body("POST /api/v1/licensing-id/restore")), &in)
		data, err := base64.StdEncoding.DecodeString(in.Backup)
		switch {
		case err != nil:
			writeError(w, 400, `"backup" is not standard base64`, "bad_json")
		case !strings.HasPrefix(string(data), fakeBackupPrefix):
			writeError(w, 400, "licensing ID backup is damaged: not a licensing ID backup (bad magic)", "damaged_backup")
		case strings.TrimPrefix(string(data), fakeBackupPrefix) != in.Password:
			writeError(w, 400, "wrong password for licensing ID backup", "wrong_password")
		default:
			writeJSON(w, 200, map[string]any{"fingerprint": fakeFingerprint, "restartRequired": true})
		}
	})
}
