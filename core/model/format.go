package model

import (
	"strconv"
	"strings"
)

// String writes the model in canonical form: two-space indentation, one
// allocation per line, one rule per line, no comments, versions as written,
// hostid values canonical, host name patterns lower-case, and only the
// parentheses the precedence needs. For a model that Parse returned,
// Parse(m.String()) returns an equal model (Rule.Line aside) whose String is
// the same.
func (m *Model) String() string {
	var b strings.Builder
	b.WriteString("model ")
	b.WriteString(quote(m.Name))
	b.WriteString(" {\n")
	if len(m.Pools) > 0 {
		b.WriteString("  partitions {\n")
		for _, p := range m.Pools {
			b.WriteString("    partition ")
			b.WriteString(quote(p.Name))
			if len(p.Allocations) == 0 {
				b.WriteString(" {}\n")
				continue
			}
			b.WriteString(" {\n")
			for _, a := range p.Allocations {
				b.WriteString("      ")
				writeAllocation(&b, a)
				b.WriteString("\n")
			}
			b.WriteString("    }\n")
		}
		b.WriteString("  }\n")
	}
	for _, r := range m.Rules {
		b.WriteString("  on ")
		writeExpr(&b, r.Condition)
		b.WriteString(" { ")
		b.WriteString(r.Action.String())
		b.WriteString(" }\n")
	}
	b.WriteString("}\n")
	return b.String()
}

func writeAllocation(b *strings.Builder, a Allocation) {
	b.WriteString(quote(a.Feature))
	b.WriteString(" ")
	b.WriteString(a.Version.String())
	b.WriteString(" ")
	switch a.Kind {
	case Absolute:
		b.WriteString(strconv.FormatInt(a.Amount, 10))
	case Percent:
		b.WriteString(strconv.FormatInt(a.Amount, 10))
		b.WriteString("%")
	case Remainder:
		b.WriteString("remainder")
	default:
		b.WriteString(a.Kind.String())
	}
}
