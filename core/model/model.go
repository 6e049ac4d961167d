package model

import (
	"fmt"

	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/version"
)

// DefaultPool is the reserved name of the pool that keeps what no partition
// takes. No partition may be called so; PoolIndex gives it 0.
const DefaultPool = "default"

// Limits against hostile input. Parse refuses anything beyond them with a
// ParseError.
const (
	MaxTextBytes   = 1 << 20       // length of the model text, and of its canonical form
	MaxNesting     = 64            // parentheses and "not"s enclosing a matcher
	MaxPools       = 1000          // partitions in one model
	MaxAllocations = 10000         // allocations in all partitions together
	MaxRules       = 10000         // rules of access
	MaxCount       = 1_000_000_000 // an absolute allocation
)

// Model is a parsed license model: named pools that divide the counts of
// feature versions, and the rules of access that send devices to them.
type Model struct {
	Name  string
	Pools []Pool
	Rules []Rule
}

// Pool is one partition: a name and what it takes from each feature version.
type Pool struct {
	Name        string
	Allocations []Allocation
}

// AllocationKind says how an allocation's amount is meant. The zero value is
// invalid.
type AllocationKind uint8

// The allocation kinds.
const (
	Absolute  AllocationKind = iota + 1 // Amount counts
	Percent                             // Amount percent (0 to 100) of the feature version's total
	Remainder                           // whatever the other pools leave; Amount is 0
)

// String returns "absolute", "percent" or "remainder".
func (k AllocationKind) String() string {
	switch k {
	case Absolute:
		return "absolute"
	case Percent:
		return "percent"
	case Remainder:
		return "remainder"
	}
	return fmt.Sprintf("AllocationKind(%d)", uint8(k))
}

// Allocation is what a pool takes of one feature version. Within a model,
// (Feature, Version) pairs are told apart by version.Compare, so "1" and
// "1.0" are the same version; Version keeps the text it was written with.
type Allocation struct {
	Feature string
	Version version.Version
	Kind    AllocationKind
	Amount  int64
}

// ActionKind says what a matching rule does with a device. The zero value is
// invalid.
type ActionKind uint8

// The action kinds.
const (
	Use    ActionKind = iota + 1 // the device draws from Action.Pool
	Accept                       // the device draws from the default pool
	Deny                         // the device may not check out
)

// String returns "use", "accept" or "deny".
func (k ActionKind) String() string {
	switch k {
	case Use:
		return "use"
	case Accept:
		return "accept"
	case Deny:
		return "deny"
	}
	return fmt.Sprintf("ActionKind(%d)", uint8(k))
}

// Action is the outcome of a rule. Pool is set only for Use and is always
// one of the model's pools, never DefaultPool.
type Action struct {
	Kind ActionKind
	Pool string
}

// String writes the action as the language does: `use "p"`, accept or deny.
func (a Action) String() string {
	if a.Kind == Use {
		return "use " + quote(a.Pool)
	}
	return a.Kind.String()
}

// Rule is one rule of access. Line is the 1-based line of its "on" in the
// text it was parsed from; it is not part of the model's meaning, so two
// models that differ only in Line are equal.
type Rule struct {
	Condition Expr
	Action    Action
	Line      int
}

// Device is what the rules of access see of a device. HostIDs are expected in
// canonical form (as hostid.New makes them); HostType is "PHYSICAL",
// "VIRTUAL" or "UNKNOWN" in any case, empty counting as "UNKNOWN".
type Device struct {
	HostIDs    []hostid.HostID
	Hostname   string
	HostType   string
	User       string
	Attributes map[string]string
}

// Evaluate tries the rules in order and returns the action of the first whose
// condition matches d, with that rule's index. A device no rule matches is
// accepted into the default pool, and the index is -1. A nil d is treated as
// a device that sent nothing.
func (m *Model) Evaluate(d *Device) (Action, int) {
	if d == nil {
		d = &Device{}
	}
	for i := range m.Rules {
		if m.Rules[i].Condition.Match(d) {
			return m.Rules[i].Action, i
		}
	}
	return Action{Kind: Accept}, -1
}

// PoolIndex returns the 1-based position of the pool called name in m.Pools,
// and 0 for DefaultPool or a name the model does not define.
func (m *Model) PoolIndex(name string) int {
	for i := range m.Pools {
		if m.Pools[i].Name == name {
			return i + 1
		}
	}
	return 0
}
