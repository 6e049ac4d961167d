package core

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tallyhq/tally/core/version"
)

// The exchange with the back office, as the state machine keeps it: usage
// counted on every grant into an open usage window, capability requests
// (BeginSync) that close the window and carry every window the back office
// has not acknowledged, and capability responses (CompleteSync) that load
// the back office's lines and acknowledge usage. Signing and verifying
// happen outside core (package core/capability); core decides which
// response is acceptable, so that every node agrees.

// DefaultSyncSource is the rights source CompleteSync loads into when it
// names none.
const DefaultSyncSource = "backoffice"

// Limits on the capability exchange.
const (
	// MaxActivations bounds the activations of one request.
	MaxActivations = 100
	// MaxActivationIDLen bounds an activation ID.
	MaxActivationIDLen = 128
	// MaxUsageWindows bounds the closed windows the state keeps unacknowledged.
	// When they are all taken, BeginSync leaves the open window open: it
	// goes on counting, and no usage is lost.
	MaxUsageWindows = 1000
	// MaxWindowRows bounds the rows of one window; closing a window with
	// more splits it into several, numbered one after the other.
	MaxWindowRows = 2048
	// MaxRequestRows bounds the rows one request carries: the oldest
	// windows up to it, at least one; the rest go with the next request.
	MaxRequestRows = 8192
)

// UsageRow is the use of one row of the Features view (a feature at a
// line version) within a window: how many grants raised a device's count
// on it and the most counts held of it at once, right after a grant.
type UsageRow struct {
	Name      string          `json:"name"`
	Version   version.Version `json:"version"`
	Checkouts int64           `json:"checkouts"`
	PeakUsed  int64           `json:"peakUsed"`
}

// UsageWindow is the usage served between From (the first grant it counts)
// and To (when BeginSync closed it). Its ID is given when it closes and
// never changes, so the back office records each window once however often
// it is sent.
type UsageWindow struct {
	ID       uint64     `json:"id"`
	From     time.Time  `json:"from"`
	To       time.Time  `json:"to"`
	Features []UsageRow `json:"features"`
}

// Activation asks the back office for the counts of an entitlement: Count
// is how many this server is to hold from now on, 0 to give them all back.
// Saying the count to hold, rather than a change, makes asking twice (a
// request superseded before its response arrived) harmless.
type Activation struct {
	ActivationID string `json:"activationId"`
	Count        int64  `json:"count"`
}

// ActivationOutcome is what the back office did with an activation.
type ActivationOutcome string

// Activation outcomes.
const (
	ActivationOK      ActivationOutcome = "ok"      // done
	ActivationUnknown ActivationOutcome = "unknown" // no such activation ID
	ActivationExceeds ActivationOutcome = "exceeds" // more than the entitlement has free
)

// ActivationResult reports one activation of the request a response
// answers.
type ActivationResult struct {
	ActivationID string            `json:"activationId"`
	Count        int64             `json:"count"`
	Result       ActivationOutcome `json:"result"`
}

// SyncRequest is the content of the pending capability request: what
// package core/capability signs with the main licensing ID.
type SyncRequest struct {
	Sequence    uint64        `json:"sequence"`
	Issued      time.Time     `json:"issued"`
	Windows     []UsageWindow `json:"windows"`
	Activations []Activation  `json:"activations"`
}

// SyncStatus is the state of the exchange with the back office.
type SyncStatus struct {
	// NextRequest is the sequence the next BeginSync gives its request.
	NextRequest uint64 `json:"nextRequest"`
	// PendingRequest is the sequence of the request waiting for its
	// response, 0 for none; PendingSince is when it was made.
	PendingRequest uint64    `json:"pendingRequest,omitempty"`
	PendingSince   time.Time `json:"pendingSince,omitzero"`
	// LastResponse is the sequence of the last response applied, 0 for
	// none, and LastResponseAt when it was applied.
	LastResponse   uint64    `json:"lastResponse,omitempty"`
	LastResponseAt time.Time `json:"lastResponseAt,omitzero"`
	// UsageAck is the highest window the back office has recorded.
	UsageAck uint64 `json:"usageAck,omitempty"`
	// UnacknowledgedWindows counts the closed windows not yet recorded.
	UnacknowledgedWindows int `json:"unacknowledgedWindows"`
	// Current is the open window: ID 0, To the state's time.
	Current UsageWindow `json:"current"`
	// LastActivations is what the last response said of its activations.
	LastActivations []ActivationResult `json:"lastActivations,omitempty"`
}

// BeginSync makes a new capability request. It closes the open usage
// window when it counts anything, and the request carries every window the
// back office has not acknowledged (the oldest, up to MaxRequestRows rows)
// and the activations. A request still pending is superseded: a response
// to it is refused from now on.
type BeginSync struct {
	Activations []Activation `json:"activations,omitempty"`
}

// CompleteSync applies a capability response that package core/capability
// verified: its signature, its producer key and that it is bound to this
// server. It is refused, changing nothing, when it does not answer the
// pending request (ErrSyncOutOfOrder), when its Sequence is not above the
// last one applied (ErrSyncReplay), or when its lines or locks would be
// refused by LoadRights. Otherwise the lines replace those of Source
// (DefaultSyncSource when empty) as LoadRights does, with Sequence as the
// rights' sequence; windows up to UsageAck are dropped as recorded; and the
// request is no longer pending. Activations, if given, must name
// activations of the pending request.
type CompleteSync struct {
	RequestSequence uint64             `json:"requestSequence"`
	Sequence        uint64             `json:"sequence"`
	Source          string             `json:"source,omitempty"`
	Lines           []FeatureLine      `json:"lines"`
	Locks           map[string]string  `json:"locks,omitempty"`
	UsageAck        uint64             `json:"usageAck,omitempty"`
	Activations     []ActivationResult `json:"activations,omitempty"`
}

func (*BeginSync) Type() string    { return "beginSync" }
func (*CompleteSync) Type() string { return "completeSync" }

func (c *BeginSync) validate() error {
	if len(c.Activations) == 0 {
		c.Activations = nil
	}
	return ValidateActivations(c.Activations)
}

func (c *CompleteSync) validate() error {
	if c.RequestSequence == 0 || c.Sequence == 0 {
		return fmt.Errorf("%w: capability response %d answers request %d; both must be above 0", ErrInvalidCommand, c.Sequence, c.RequestSequence)
	}
	if c.Source == "" {
		c.Source = DefaultSyncSource
	}
	load := c.rights()
	if err := load.validate(); err != nil {
		return err
	}
	c.Lines, c.Locks = load.Lines, load.Locks
	if len(c.Activations) == 0 {
		c.Activations = nil
	}
	return ValidateActivationResults(c.Activations)
}

// rights is the LoadRights that a response amounts to.
func (c *CompleteSync) rights() *LoadRights {
	return &LoadRights{Source: c.Source, Sequence: c.Sequence, Lines: c.Lines, Locks: c.Locks}
}

// ValidateActivations checks the activations of a request: at most
// MaxActivations, each ID of 1 to MaxActivationIDLen printable characters
// and given once, each count 0 to MaxCount.
func ValidateActivations(list []Activation) error {
	if len(list) > MaxActivations {
		return fmt.Errorf("%w: %d activations, at most %d", ErrInvalidActivation, len(list), MaxActivations)
	}
	seen := make(map[string]bool, len(list))
	for _, a := range list {
		switch {
		case strings.TrimSpace(a.ActivationID) == "" || validateLabel("activation ID", a.ActivationID, MaxActivationIDLen) != nil:
			return fmt.Errorf("%w: activation ID %q is not 1 to %d printable characters", ErrInvalidActivation, a.ActivationID, MaxActivationIDLen)
		case a.Count < 0 || a.Count > MaxCount:
			return fmt.Errorf("%w: activation %q asks for %d, outside 0..%d", ErrInvalidActivation, a.ActivationID, a.Count, MaxCount)
		case seen[a.ActivationID]:
			return fmt.Errorf("%w: activation %q appears twice", ErrInvalidActivation, a.ActivationID)
		}
		seen[a.ActivationID] = true
	}
	return nil
}

// ValidateActivationResults checks what a response says of its
// activations: as ValidateActivations, and each result one of the
// ActivationOutcome constants.
func ValidateActivationResults(list []ActivationResult) error {
	asked := make([]Activation, 0, min(len(list), MaxActivations+1))
	for _, r := range list {
		switch r.Result {
		case ActivationOK, ActivationUnknown, ActivationExceeds:
		default:
			return fmt.Errorf("%w: activation %q has result %q (want ok, unknown or exceeds)", ErrInvalidActivation, r.ActivationID, r.Result)
		}
		asked = append(asked, Activation{ActivationID: r.ActivationID, Count: r.Count})
	}
	return ValidateActivations(asked)
}

// ValidateUsage checks closed usage windows as BeginSync makes them: at
// most MaxUsageWindows, IDs above 0 and increasing, From set and not after
// To, and 1 to MaxWindowRows rows each, sorted by feature and version,
// every one with a grant and a peak of at least one count.
func ValidateUsage(windows []UsageWindow) error {
	if len(windows) > MaxUsageWindows {
		return fmt.Errorf("%w: %d windows, at most %d", ErrInvalidUsage, len(windows), MaxUsageWindows)
	}
	for i, w := range windows {
		switch {
		case w.ID == 0:
			return fmt.Errorf("%w: window 0", ErrInvalidUsage)
		case i > 0 && w.ID <= windows[i-1].ID:
			return fmt.Errorf("%w: window %d follows window %d", ErrInvalidUsage, w.ID, windows[i-1].ID)
		case w.From.IsZero() || w.To.Before(w.From):
			return fmt.Errorf("%w: window %d runs from %s to %s", ErrInvalidUsage, w.ID, w.From.Format(time.RFC3339), w.To.Format(time.RFC3339))
		case len(w.Features) == 0 || len(w.Features) > MaxWindowRows:
			return fmt.Errorf("%w: window %d has %d rows, want 1 to %d", ErrInvalidUsage, w.ID, len(w.Features), MaxWindowRows)
		}
		if err := validateUsageRows(w.Features); err != nil {
			return fmt.Errorf("window %d: %w", w.ID, err)
		}
	}
	return nil
}

func validateUsageRows(rows []UsageRow) error {
	for i, r := range rows {
		if err := validateFeatureName(r.Name); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidUsage, err)
		}
		if r.Version.IsZero() || r.Checkouts < 1 || r.PeakUsed < 1 {
			return fmt.Errorf("%w: %s %s has version, checkouts or peak missing", ErrInvalidUsage, r.Name, r.Version)
		}
		if i > 0 && compareUsageRows(rows[i-1], r) >= 0 {
			return fmt.Errorf("%w: %s %s is out of order or twice", ErrInvalidUsage, r.Name, r.Version)
		}
	}
	return nil
}

// compareUsageRows orders rows by feature name, then version, then the
// version's text ("1" and "1.0" are rows of their own when lines say both).
func compareUsageRows(a, b UsageRow) int {
	return cmp.Or(strings.Compare(a.Name, b.Name), version.Compare(a.Version, b.Version),
		strings.Compare(a.Version.String(), b.Version.String()))
}

// syncState is the exchange with the back office.
type syncState struct {
	requestSeq  uint64 // the last request sequence given
	pending     *pendingSync
	responseSeq uint64 // the last response applied
	responseAt  time.Time
	usageAck    uint64 // the highest window the back office recorded
	windowSeq   uint64 // the last window ID given
	windows     []UsageWindow
	current     openWindow
	activations []ActivationResult // of the last response

	// epoch names the open window for the groups' cached rows; it moves on
	// whenever the open window's rows are replaced. Not replicated.
	epoch uint64
	// mark is scratch for countUsage.
	mark []int64
}

// pendingSync is the request waiting for its response. It carries the
// windows up to UpTo.
type pendingSync struct {
	Sequence    uint64       `json:"sequence"`
	Issued      time.Time    `json:"issued"`
	UpTo        uint64       `json:"upTo,omitempty"`
	Activations []Activation `json:"activations,omitempty"`
}

// openWindow is the usage counted since the last window closed.
type openWindow struct {
	from time.Time // the first grant it counts; zero when empty
	rows map[usageKey]*usageCount
}

type usageKey struct {
	name    string
	version version.Version
}

type usageCount struct{ checkouts, peak int64 }

// held is what a group's leases hold: counts and overdraft, and the
// uncounted lines' use.
func (g *group) held() int64 {
	n := g.used + g.overdraftUsed
	if g.uncounted {
		for _, l := range g.active {
			if l.Uncounted {
				n += l.used
			}
		}
	}
	return n
}

// usageMark notes what each group serving a checkout holds before a grant.
func (s *State) usageMark(groups []*group) []int64 {
	m := s.sync.mark[:0]
	for _, g := range groups {
		m = append(m, g.held())
	}
	s.sync.mark = m
	return m
}

// countUsage adds a grant to the open window: one checkout on every group
// it drew on, and the group's holding as a peak. It runs on every grant, so
// a group keeps a pointer to its row in the open window.
func (s *State) countUsage(groups []*group, before []int64) {
	for i, g := range groups {
		held := g.held()
		if held == before[i] {
			continue
		}
		u := g.usage
		if u == nil || g.usageEpoch != s.sync.epoch {
			u = s.sync.current.row(usageKey{g.name, g.version}, s.now)
			g.usage, g.usageEpoch = u, s.sync.epoch
		}
		u.checkouts++
		u.peak = max(u.peak, held)
	}
}

// row returns the open window's row for a key, adding it (and starting the
// window) if needed.
func (w *openWindow) row(k usageKey, now time.Time) *usageCount {
	if u := w.rows[k]; u != nil {
		return u
	}
	if w.rows == nil {
		w.rows = map[usageKey]*usageCount{}
	}
	if len(w.rows) == 0 {
		w.from = now
	}
	u := &usageCount{}
	w.rows[k] = u
	return u
}

// sorted returns the open window's rows in order.
func (w *openWindow) sorted() []UsageRow {
	rows := make([]UsageRow, 0, len(w.rows))
	for k, u := range w.rows {
		rows = append(rows, UsageRow{Name: k.name, Version: k.version, Checkouts: u.checkouts, PeakUsed: u.peak})
	}
	slices.SortFunc(rows, compareUsageRows)
	return rows
}

// closeWindow gives the open window its ID (IDs, when it has more than
// MaxWindowRows rows) and keeps it until the back office acknowledges it.
// It leaves the window open when it is empty or when the closed windows
// would be more than limit.
func (sy *syncState) closeWindow(to time.Time, limit int) {
	rows := sy.current.sorted()
	if len(rows) == 0 || len(sy.windows)+(len(rows)+MaxWindowRows-1)/MaxWindowRows > limit {
		return
	}
	for len(rows) > 0 {
		n := min(len(rows), MaxWindowRows)
		sy.windowSeq++
		sy.windows = append(sy.windows, UsageWindow{ID: sy.windowSeq, From: sy.current.from, To: to, Features: rows[:n:n]})
		rows = rows[n:]
	}
	sy.current = openWindow{}
	sy.epoch++
}

func (s *State) beginSync(c *BeginSync) {
	sy := &s.sync
	sy.closeWindow(s.now, MaxUsageWindows)
	var upTo uint64
	rows := 0
	for _, w := range sy.windows {
		if rows > 0 && rows+len(w.Features) > MaxRequestRows {
			break
		}
		rows += len(w.Features)
		upTo = w.ID
	}
	sy.requestSeq++
	sy.pending = &pendingSync{Sequence: sy.requestSeq, Issued: s.now, UpTo: upTo, Activations: slices.Clone(c.Activations)}
}

func (s *State) completeSync(c *CompleteSync) (Result, error) {
	sy := &s.sync
	if c.Sequence <= sy.responseSeq {
		return Result{}, fmt.Errorf("%w: response %d, the last applied was %d", ErrSyncReplay, c.Sequence, sy.responseSeq)
	}
	if sy.pending == nil {
		return Result{}, fmt.Errorf("%w: response %d answers request %d and no request is pending", ErrSyncOutOfOrder, c.Sequence, c.RequestSequence)
	}
	if c.RequestSequence != sy.pending.Sequence {
		return Result{}, fmt.Errorf("%w: response %d answers request %d, the pending request is %d", ErrSyncOutOfOrder, c.Sequence, c.RequestSequence, sy.pending.Sequence)
	}
	for _, r := range c.Activations {
		if !slices.ContainsFunc(sy.pending.Activations, func(a Activation) bool { return a.ActivationID == r.ActivationID }) {
			return Result{}, fmt.Errorf("%w: the response reports activation %q, which request %d did not ask for", ErrInvalidActivation, r.ActivationID, c.RequestSequence)
		}
	}
	res, err := s.loadRights(c.rights())
	if err != nil {
		return Result{}, err
	}
	sy.windows = slices.DeleteFunc(sy.windows, func(w UsageWindow) bool { return w.ID <= c.UsageAck })
	// The back office may know windows from before a restore on another
	// machine; new windows must not take IDs it already recorded.
	sy.usageAck = max(sy.usageAck, c.UsageAck)
	sy.windowSeq = max(sy.windowSeq, sy.usageAck)
	sy.pending = nil
	sy.responseSeq, sy.responseAt = c.Sequence, s.now
	sy.activations = slices.Clone(c.Activations)
	return res, nil
}

// PendingSync returns the pending capability request, and whether there is
// one. The transport signs it with the main licensing ID (package
// core/capability) and sends it; any node may, since the request is
// replicated.
func (s *State) PendingSync() (SyncRequest, bool) {
	p := s.sync.pending
	if p == nil {
		return SyncRequest{}, false
	}
	req := SyncRequest{Sequence: p.Sequence, Issued: p.Issued, Activations: slices.Clone(p.Activations)}
	for _, w := range s.sync.windows {
		if w.ID > p.UpTo {
			break
		}
		w.Features = slices.Clone(w.Features)
		req.Windows = append(req.Windows, w)
	}
	return req, true
}

// SyncStatus reports the exchange with the back office.
func (s *State) SyncStatus() SyncStatus {
	sy := &s.sync
	st := SyncStatus{
		NextRequest: sy.requestSeq + 1, LastResponse: sy.responseSeq, LastResponseAt: sy.responseAt,
		UsageAck: sy.usageAck, UnacknowledgedWindows: len(sy.windows),
		Current:         UsageWindow{From: sy.current.from, To: s.now, Features: sy.current.sorted()},
		LastActivations: slices.Clone(sy.activations),
	}
	if sy.pending != nil {
		st.PendingRequest, st.PendingSince = sy.pending.Sequence, sy.pending.Issued
	}
	return st
}

// syncDetail says what a sync command did, for the audit log.
func syncDetail(c Command) (string, bool) {
	switch c := c.(type) {
	case *BeginSync:
		return fmt.Sprintf("made a capability request with %d activations", len(c.Activations)), true
	case *CompleteSync:
		return fmt.Sprintf("applied capability response %d to request %d: %d lines into rights source %q, usage recorded up to window %d",
			c.Sequence, c.RequestSequence, len(c.Lines), c.Source, c.UsageAck), true
	}
	return "", false
}

// syncSnapshot is the exchange as a snapshot holds it.
type syncSnapshot struct {
	RequestSeq      uint64             `json:"requestSeq,omitempty"`
	Pending         *pendingSync       `json:"pending,omitempty"`
	ResponseSeq     uint64             `json:"responseSeq,omitempty"`
	ResponseAt      time.Time          `json:"responseAt,omitzero"`
	UsageAck        uint64             `json:"usageAck,omitempty"`
	WindowSeq       uint64             `json:"windowSeq,omitempty"`
	Windows         []UsageWindow      `json:"windows,omitempty"`
	CurrentFrom     time.Time          `json:"currentFrom,omitzero"`
	Current         []UsageRow         `json:"current,omitempty"`
	LastActivations []ActivationResult `json:"lastActivations,omitempty"`
}

// snapshotSync returns the exchange, or nil when nothing has happened.
func (s *State) snapshotSync() *syncSnapshot {
	sy := &s.sync
	if sy.requestSeq == 0 && sy.responseSeq == 0 && sy.windowSeq == 0 && len(sy.current.rows) == 0 {
		return nil
	}
	return &syncSnapshot{
		RequestSeq: sy.requestSeq, Pending: sy.pending, ResponseSeq: sy.responseSeq, ResponseAt: sy.responseAt,
		UsageAck: sy.usageAck, WindowSeq: sy.windowSeq, Windows: sy.windows,
		CurrentFrom: sy.current.from, Current: sy.current.sorted(), LastActivations: sy.activations,
	}
}

// restoreSync checks and installs the exchange of a snapshot.
func (s *State) restoreSync(snap *syncSnapshot) error {
	if snap == nil {
		return nil
	}
	sy := syncState{
		requestSeq: snap.RequestSeq, pending: snap.Pending, responseSeq: snap.ResponseSeq, responseAt: snap.ResponseAt.UTC(),
		usageAck: snap.UsageAck, windowSeq: snap.WindowSeq, windows: snap.Windows, activations: snap.LastActivations,
		current: openWindow{from: snap.CurrentFrom.UTC()},
	}
	if p := sy.pending; p != nil {
		p.Issued = p.Issued.UTC()
	}
	for i := range sy.windows {
		w := &sy.windows[i]
		w.From, w.To = w.From.UTC(), w.To.UTC()
	}
	if err := validateUsageRows(snap.Current); err != nil {
		return fmt.Errorf("open usage window: %w", err)
	}
	for _, r := range snap.Current {
		u := sy.current.row(usageKey{r.Name, r.Version}, sy.current.from)
		u.checkouts, u.peak = r.Checkouts, r.PeakUsed
	}
	if err := sy.check(s.now); err != nil {
		return err
	}
	s.sync = sy
	return nil
}

// check verifies the exchange's invariants at time now.
func (sy *syncState) check(now time.Time) error {
	if p := sy.pending; p != nil {
		if p.Sequence == 0 || p.Sequence != sy.requestSeq || p.Issued.IsZero() || p.Issued.After(now) || p.UpTo > sy.windowSeq {
			return fmt.Errorf("%w: pending request %d (of %d) issued %s up to window %d", ErrInvalidUsage, p.Sequence, sy.requestSeq, p.Issued, p.UpTo)
		}
		if err := ValidateActivations(p.Activations); err != nil {
			return err
		}
	}
	if (sy.responseSeq == 0) != sy.responseAt.IsZero() || sy.responseAt.After(now) || (sy.responseSeq == 0 && sy.activations != nil) {
		return fmt.Errorf("%w: last response %d applied at %s", ErrInvalidUsage, sy.responseSeq, sy.responseAt)
	}
	if err := ValidateActivationResults(sy.activations); err != nil {
		return err
	}
	if sy.usageAck > sy.windowSeq {
		return fmt.Errorf("%w: window %d acknowledged, the last given is %d", ErrInvalidUsage, sy.usageAck, sy.windowSeq)
	}
	if err := ValidateUsage(sy.windows); err != nil {
		return err
	}
	if n := len(sy.windows); n > 0 && (sy.windows[0].ID <= sy.usageAck || sy.windows[n-1].ID > sy.windowSeq || sy.windows[n-1].To.After(now)) {
		return fmt.Errorf("%w: windows %d to %d kept with %d acknowledged, %d given", ErrInvalidUsage, sy.windows[0].ID, sy.windows[n-1].ID, sy.usageAck, sy.windowSeq)
	}
	if (len(sy.current.rows) == 0) != sy.current.from.IsZero() || sy.current.from.After(now) {
		return fmt.Errorf("%w: open window from %s with %d rows", ErrInvalidUsage, sy.current.from, len(sy.current.rows))
	}
	return nil
}

// keepSyncAcross returns the exchange after a database restore: running is
// the cluster's, backup the restored state's, backupNow the backup's clock.
// A restore must neither make a response acceptable again nor lose usage
// nor have usage recorded twice, so:
//
//   - every sequence is the higher of the two, and the running cluster's
//     pending request stays pending only when the backup had not given a
//     later request sequence;
//   - the running cluster's windows, open and closed, stay: they are usage
//     it served, whatever the backup says;
//   - of the backup's windows, only those with IDs above the running
//     cluster's last window are added. A backup of this cluster's own past
//     has none (the IDs it used are the cluster's, recorded or still held),
//     so it adds nothing; a backup from another history (a machine that
//     died, restored onto a new one with its licensing ID) brings the usage
//     it had not reported, under its own IDs, which the back office may
//     already have recorded once. Its open window counts, closed, only when
//     its last window is above the running cluster's: otherwise it is the
//     window the running cluster still has open.
//
// It refuses a restore that would keep more than MaxUsageWindows windows.
func keepSyncAcross(running, backup syncState, backupNow time.Time) (syncState, error) {
	out := running
	if backup.requestSeq > running.requestSeq {
		out.requestSeq, out.pending = backup.requestSeq, nil
	}
	if backup.responseSeq > running.responseSeq {
		out.responseSeq, out.responseAt = backup.responseSeq, backup.responseAt
	}
	if backup.windowSeq > running.windowSeq {
		backup.closeWindow(backupNow, MaxUsageWindows+MaxUsageWindows)
	}
	out.windows = slices.Clone(running.windows)
	for _, w := range backup.windows {
		if w.ID > running.windowSeq {
			out.windows = append(out.windows, w)
		}
	}
	if len(out.windows) > MaxUsageWindows {
		return syncState{}, fmt.Errorf("%w: the restore would keep %d usage windows, at most %d; send the usage to the back office first",
			ErrInvalidSnapshot, len(out.windows), MaxUsageWindows)
	}
	// The back office may have recorded windows of the backup's history
	// under IDs the running cluster has not given yet.
	out.windowSeq = max(running.windowSeq, backup.windowSeq, backup.usageAck)
	out.epoch = running.epoch + 1
	return out, nil
}

// PendingSyncOf returns the pending capability request of the state behind
// store. When none is pending, or always when renew is set (a request that
// asks for activations), it first calls begin, which applies a BeginSync
// the way its caller applies changes (audited, logged).
func PendingSyncOf(ctx context.Context, store Store, begin func() error, renew bool) (SyncRequest, error) {
	var p SyncRequest
	var ok bool
	read := func() error {
		return store.Read(ctx, func(st *State) error { p, ok = st.PendingSync(); return nil })
	}
	if err := read(); err != nil {
		return p, err
	}
	if ok && !renew {
		return p, nil
	}
	if err := begin(); err != nil {
		return p, err
	}
	if err := read(); err != nil {
		return p, err
	}
	if !ok {
		return p, fmt.Errorf("%w: no pending capability request after beginning one", ErrNotApplied)
	}
	return p, nil
}
