package core

import (
	"fmt"
	"maps"
	"strconv"
)

// loadRights replaces the lines of one rights source with a newer set.
// Leases follow their lines by ID; consumed counts of a line that stays are
// kept; leases that no longer fit are revoked and returned.
func (s *State) loadRights(c *LoadRights) (Result, error) {
	old := s.sources[c.Source]
	if old != nil && c.Sequence <= old.Sequence {
		return Result{}, fmt.Errorf("%w: %q is at sequence %d, this is %d", ErrStaleRights, c.Source, old.Sequence, c.Sequence)
	}
	for _, fl := range c.Lines {
		if other, ok := s.lines[fl.ID]; ok && other.Source != c.Source {
			return Result{}, fmt.Errorf("%w: line id %q is already held by source %q", ErrInvalidFeature, fl.ID, other.Source)
		}
	}
	// Sorted, so that every node refuses with the same message.
	for _, name := range sortedKeys(c.Locks) {
		v := c.Locks[name]
		for _, src := range sortedKeys(s.props.locks) {
			if lv, ok := s.props.locks[src][name]; ok && src != c.Source && lv != v {
				return Result{}, fmt.Errorf("%w: %s is locked to %q by %q, this wants %q", ErrConflictingLock, name, lv, src, v)
			}
		}
	}

	consumed := map[string]int64{}
	if old != nil {
		for _, id := range old.LineIDs {
			consumed[id] = s.lines[id].consumed
			delete(s.lines, id)
		}
	}
	src := &rightsSource{Name: c.Source, Sequence: c.Sequence, Locks: c.Locks}
	for _, fl := range c.Lines {
		s.lines[fl.ID] = &line{FeatureLine: fl, consumed: min(consumed[fl.ID], fl.Count)}
		src.LineIDs = append(src.LineIDs, fl.ID)
	}
	s.sources[c.Source] = src
	s.setLocks(c.Source, c.Locks)
	s.families = buildInventory(s.lines)
	return Result{Changed: s.rebuild()}, nil
}

// removeRights takes a source's lines away; their leases are revoked.
func (s *State) removeRights(c *RemoveRights) (Result, error) {
	src := s.sources[c.Source]
	if src == nil {
		return Result{}, fmt.Errorf("%w %q", ErrUnknownRights, c.Source)
	}
	for _, id := range src.LineIDs {
		delete(s.lines, id)
	}
	delete(s.sources, c.Source)
	s.setLocks(c.Source, nil)
	s.families = buildInventory(s.lines)
	return Result{Changed: s.rebuild()}, nil
}

func (s *State) setLocks(source string, locks map[string]string) {
	if len(locks) == 0 {
		delete(s.props.locks, source)
	} else {
		s.props.locks[source] = maps.Clone(locks)
	}
	s.policy = s.props.policy()
}

// setProperty changes a setting the producer has not locked.
func (s *State) setProperty(c *SetProperty) error {
	d, _ := lookupProperty(c.Name) // validate checked it exists
	if v, locked := s.props.effective(d); locked {
		return fmt.Errorf("%w: %s is fixed at %q", ErrPropertyLocked, c.Name, v)
	}
	s.props.values[c.Name] = c.Value
	s.policy = s.props.policy()
	return nil
}

// sourceLineID names the n-th line of a source that gave it no ID.
func sourceLineID(source string, n int) string { return source + "#" + strconv.Itoa(n) }
