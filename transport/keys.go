package transport

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/hostid"
)

// First-authentication keys. The transport makes what the state machine
// must not: the random key IDs and secrets (from Config.Random, which is
// crypto/rand in tallyd). Whether a secret is free, a one-time key unused
// or a key known is decided in core.
const (
	maxKeysBody = 4 << 10
	// keyIDBytes of randomness name a key: "k-" and 16 hex digits.
	keyIDBytes = 8
	// secretGroups groups of secretGroupLen characters from secretAlphabet
	// make a random secret: 20 characters, 100 bits.
	secretGroups   = 4
	secretGroupLen = 5
	// secretAlphabet leaves out the characters people confuse (0 and O,
	// 1 and I). Its 32 characters let a random byte pick one without bias.
	secretAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	// maskPrefix stands for all but the last maskShown characters of a
	// hidden secret.
	maskPrefix = "••••"
	maskShown  = 2
)

// keyView is a first-authentication key as the API shows it: the secret
// masked unless the request asked to show it.
type keyView struct {
	ID          string        `json:"id"`
	Type        core.KeyType  `json:"type"`
	Secret      string        `json:"secret"`
	Shown       bool          `json:"shown"`
	Description string        `json:"description"`
	State       core.KeyState `json:"state"`
	Created     time.Time     `json:"created"`
	For         hostid.HostID `json:"for,omitzero"`
	UsedBy      hostid.HostID `json:"usedBy,omitzero"`
	UsedAt      time.Time     `json:"usedAt,omitzero"`
	Uses        uint64        `json:"uses"`
}

func viewKey(k core.KeySummary, show bool) keyView {
	v := keyView{ID: k.ID, Type: k.Type, Secret: k.Secret, Shown: show, Description: k.Description,
		State: k.State, Created: k.Created, For: k.For, UsedBy: k.UsedBy, UsedAt: k.UsedAt, Uses: k.Uses}
	if !show {
		v.Secret = maskSecret(k.Secret)
	}
	return v
}

// maskSecret hides all but the last two characters of a secret.
func maskSecret(secret string) string {
	if len(secret) <= maskShown {
		return maskPrefix
	}
	return maskPrefix + secret[len(secret)-maskShown:]
}

// parseKeyFilter reads the type, state and show query parameters. Type and
// state are read without regard to case, and "one-time" is ONE_TIME.
func parseKeyFilter(r *http.Request) (core.KeyFilter, bool, error) {
	q := r.URL.Query()
	var f core.KeyFilter
	var show bool
	if v, ok := q["type"]; ok {
		t, err := core.ParseKeyType(strings.ReplaceAll(strings.ToUpper(lastValue(v)), "-", "_"))
		if err != nil || t == 0 {
			return f, false, badRequest("bad_query", fmt.Sprintf("type %q is not ONE_TIME or MASS", lastValue(v)))
		}
		f.Type = t
	}
	if v, ok := q["state"]; ok {
		st, err := core.ParseKeyState(strings.ToUpper(lastValue(v)))
		if err != nil || st == 0 {
			return f, false, badRequest("bad_query", fmt.Sprintf("state %q is not active, inactive or used", lastValue(v)))
		}
		f.State = st
	}
	if v, ok := q["show"]; ok {
		b, err := strconv.ParseBool(lastValue(v))
		if err != nil {
			return f, false, badRequest("bad_query", fmt.Sprintf("show %q is not true or false", lastValue(v)))
		}
		show = b
	}
	return f, show, nil
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) error {
	f, show, err := parseKeyFilter(r)
	if err != nil {
		return err
	}
	return listPaged(s, w, r, func(st *core.State) []keyView {
		keys := st.Keys(f)
		out := make([]keyView, len(keys))
		for i, k := range keys {
			out[i] = viewKey(k, show)
		}
		return out
	})
}

// createKeysRequest is the body of POST /api/v1/keys: count one-time keys
// with random secrets, or one mass-deployment key whose secret is typed
// or, when none is given, random.
type createKeysRequest struct {
	Type        *string `json:"type"`
	Count       *int    `json:"count"`
	Description string  `json:"description"`
	Secret      *string `json:"secret"`
}

// createKeys makes the keys and answers them with their secrets shown:
// the one time the API shows them without being asked.
func (s *Server) createKeys(w http.ResponseWriter, r *http.Request) error {
	var req createKeysRequest
	if err := readJSON(w, r, maxKeysBody, &req); err != nil {
		return err
	}
	c, err := s.newKeys(req)
	if err != nil {
		return err
	}
	if err := s.apply(r, c); err != nil {
		return err
	}
	items := make([]keyView, 0, len(c.Keys))
	err = s.cfg.Store.Read(r.Context(), func(st *core.State) error {
		for _, nk := range c.Keys {
			k, err := st.Key(nk.ID)
			if err != nil {
				// Deleted already by someone else; the rest are still shown.
				continue
			}
			items = append(items, viewKey(k, true))
		}
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, countedList[keyView]{Total: len(items), Items: items})
	return nil
}

// newKeys checks a create request and makes the command, drawing IDs and
// random secrets.
func (s *Server) newKeys(req createKeysRequest) (*core.CreateKeys, error) {
	if req.Type == nil {
		return nil, badRequest("bad_json", `the body wants "type": ONE_TIME or MASS`)
	}
	typ, err := core.ParseKeyType(strings.ReplaceAll(strings.ToUpper(*req.Type), "-", "_"))
	if err != nil || typ == 0 {
		return nil, fmt.Errorf("%w: type %q (want ONE_TIME or MASS)", core.ErrInvalidKey, *req.Type)
	}
	if err := checkKeyDescription(req.Description); err != nil {
		return nil, err
	}
	count := 1
	if req.Count != nil {
		count = *req.Count
	}
	switch {
	case typ == core.KeyOneTime && req.Secret != nil:
		return nil, fmt.Errorf("%w: one-time keys get random secrets; a typed secret is for a MASS key", core.ErrInvalidKey)
	case typ == core.KeyOneTime && req.Count == nil:
		return nil, badRequest("bad_json", `the body wants "count" for ONE_TIME keys`)
	case typ == core.KeyOneTime && (count < 1 || count > core.MaxKeysPerCommand):
		return nil, fmt.Errorf("%w: count %d, want 1 to %d", core.ErrInvalidKey, count, core.MaxKeysPerCommand)
	case typ == core.KeyMass && count != 1:
		return nil, fmt.Errorf("%w: count %d; a MASS key is made one at a time", core.ErrInvalidKey, count)
	}
	c := &core.CreateKeys{KeyType: typ, Keys: make([]core.NewKey, count)}
	for i := range c.Keys {
		id, err := newKeyID(s.cfg.Random)
		if err != nil {
			return nil, err
		}
		secret := ""
		if req.Secret != nil {
			secret = *req.Secret
		} else if secret, err = newKeySecret(s.cfg.Random); err != nil {
			return nil, err
		}
		c.Keys[i] = core.NewKey{ID: id, Secret: secret, Description: req.Description}
	}
	return c, nil
}

// newKeyID draws a key ID: "k-" and 16 hex digits.
func newKeyID(random io.Reader) (string, error) {
	var b [keyIDBytes]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return "", fmt.Errorf("making a key ID: %w", err)
	}
	return "k-" + hex.EncodeToString(b[:]), nil
}

// newKeySecret draws a secret of the form XXXXX-XXXXX-XXXXX-XXXXX.
func newKeySecret(random io.Reader) (string, error) {
	var b [secretGroups * secretGroupLen]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return "", fmt.Errorf("making a key secret: %w", err)
	}
	var sb strings.Builder
	for i, x := range b {
		if i > 0 && i%secretGroupLen == 0 {
			sb.WriteByte('-')
		}
		sb.WriteByte(secretAlphabet[int(x)%len(secretAlphabet)])
	}
	return sb.String(), nil
}

// checkKeyDescription refuses a description core would refuse, before any
// command is applied, so that a request that changes two things changes
// neither when the description is bad.
func checkKeyDescription(d string) error {
	if len(d) > core.MaxKeyDescriptionLen {
		return fmt.Errorf("%w: description longer than %d bytes", core.ErrInvalidKey, core.MaxKeyDescriptionLen)
	}
	if strings.IndexFunc(d, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return fmt.Errorf("%w: description has a control character", core.ErrInvalidKey)
	}
	return nil
}

// updateKeyRequest is the body of PUT /api/v1/keys/{id}: activate or
// deactivate, a new description, or both.
type updateKeyRequest struct {
	Active      *bool   `json:"active"`
	Description *string `json:"description"`
}

// updateKey changes a key. The state comes first: it is what can be
// refused (unknown, or a used one-time key), and the description is
// checked before either is applied, so a refused request changes nothing.
func (s *Server) updateKey(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var req updateKeyRequest
	if err := readJSON(w, r, maxKeysBody, &req); err != nil {
		return err
	}
	if req.Active == nil && req.Description == nil {
		return badRequest("bad_json", `the body wants "active", "description" or both`)
	}
	var cmds []core.Command
	if req.Active != nil {
		cmds = append(cmds, &core.SetKeyActive{ID: id, Active: *req.Active})
	}
	if req.Description != nil {
		if err := checkKeyDescription(*req.Description); err != nil {
			return err
		}
		cmds = append(cmds, &core.SetKeyDescription{ID: id, Description: *req.Description})
	}
	for _, c := range cmds {
		if err := s.apply(r, c); err != nil {
			return err
		}
	}
	var k core.KeySummary
	err := s.cfg.Store.Read(r.Context(), func(st *core.State) error {
		var err error
		k, err = st.Key(id)
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewKey(k, false))
	return nil
}

func (s *Server) deleteKey(w http.ResponseWriter, r *http.Request) error {
	return s.applyNoContent(w, r, &core.DeleteKey{ID: r.PathValue("id")})
}
