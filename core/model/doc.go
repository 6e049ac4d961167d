// Package model reads license models: the text that divides the counts of
// feature versions into named pools and says, by rules of access, which
// devices draw from which pool. It owns the language (lexer, parser, syntax
// tree, checks, canonical form) and the evaluation of the rules against a
// device. It does not know the rights: whether a model asks for more counts
// than the rights hold, and how percentages become counts, is package core's
// business.
//
// # The language
//
//	model "sites" {
//	  partitions {
//	    partition "pune" { "cad" 1.0 10  "viewer" 2.0 25% }
//	    partition "kassel" { "cad" 1.0 remainder }
//	  }
//	  on hostid("00:11:22:33:44:55", ETHERNET) or hostname("pune-*") { use "pune" }
//	  on dictionary("site", "kassel") and not hosttype(VIRTUAL) { use "kassel" }
//	  on any() { accept }        // default pool
//	}
//
// The grammar:
//
//	model      := 'model' STRING '{' [partitions] {rule} '}'
//	partitions := 'partitions' '{' {partition} '}'
//	partition  := 'partition' STRING '{' {allocation} '}'
//	allocation := STRING version amount
//	version    := NUMBER | STRING          dotted numeric, as package version reads it
//	amount     := NUMBER | NUMBER '%' | 'remainder'
//	rule       := 'on' expr '{' action [';'] '}'
//	action     := 'use' STRING | 'accept' | 'deny'
//	expr       := and {'or' and}
//	and        := unary {'and' unary}
//	unary      := 'not' unary | '(' expr ')' | matcher
//	matcher    := 'hostid' '(' STRING ',' IDENT ')'
//	            | 'hostname' '(' STRING ')'
//	            | 'hosttype' '(' IDENT ')'
//	            | 'dictionary' '(' STRING ',' STRING ')'
//	            | 'user' '(' STRING ')'
//	            | 'any' '(' ')'
//
// Lexical rules: white space is free; comments run from // or # to the end of
// the line, or from /* to the next */ (they do not nest). Keywords and matcher
// names are lower-case; the type names after hostid (ETHERNET, UUID, SERIAL,
// STRING, USER) and hosttype (PHYSICAL, VIRTUAL, UNKNOWN) are read in any
// case and written upper-case. Strings are double-quoted on one line, with
// the escapes \" and \\ only, and may hold no control characters (a tab
// included). A NUMBER is a run of digits and dots: a version (1.0, 6.1.3,
// 2022.01) or a count. Counts are whole numbers from 0 to MaxCount,
// percentages 0 to 100.
//
// # Meaning
//
// Each partition is a pool; its allocations say what it takes of a feature
// version: an absolute count, a percentage of the version's total, or the
// remainder that the other pools leave. Whatever no pool takes stays in the
// pool named "default", a name no partition may have. Versions that
// version.Compare finds equal ("1" and "1.0") are the same feature version
// for the checks below, but each allocation keeps its text as written.
//
// The rules are tried in order and the first whose condition matches a device
// decides: use "p" sends it to pool p, accept to the default pool, deny
// refuses it. A device that no rule matches is accepted into the default
// pool. not binds tighter than and, which binds tighter than or.
//
// The matchers:
//
//   - hostid(value, TYPE) matches a device that has this HostID. The value is
//     put in canonical form by hostid.New, so "00-11-22-33-44-55" matches the
//     device's "00:11:22:33:44:55"; the device's HostIDs must be canonical.
//   - hostname(glob) matches the device's host name against a path.Match
//     pattern, ignoring case: the pattern is lower-cased when parsed and the
//     host name when matched.
//   - hosttype(TYPE) matches the device's type; a device with no type is
//     UNKNOWN.
//   - dictionary(key, glob) matches a device that sent the attribute key
//     (exactly) with a value matching the path.Match pattern, case
//     sensitively. A pattern without *, ?, [ or \ is an exact value; to match
//     those characters literally, escape them with \ (written "\\*" in a
//     string). As in path.Match, * and ? do not match "/".
//   - user(name) matches the device's user exactly, case included.
//   - any() matches every device.
//
// # Checks
//
// Parse refuses, with a *ParseError naming line and column: a syntax error;
// an empty model, pool, feature, user or host name pattern, or dictionary
// key; a partition named "default" (and use "default", which is written
// accept); two partitions of one name (names are case-sensitive); use of an
// undefined pool; one feature version twice in a pool; percentages of one
// feature version summing over 100 across pools; more than one remainder for
// a feature version; a bad hostid value or type, host type, version, count or
// glob. Against hostile input it refuses text over MaxTextBytes, expressions
// nested deeper than MaxNesting (each "not" and "(" counts), and more than
// MaxPools partitions, MaxAllocations allocations or MaxRules rules; the
// lexer and parser run in time linear in the text.
//
// # Syntax tree and canonical form
//
// Parse flattens and and or chains, parentheses included: "a or (b or c)"
// gives one Or of three terms, and parentheses leave no node of their own.
// Model.String writes the canonical text: comments dropped, two-space
// indentation, one allocation and one rule per line, hostids canonical,
// host name patterns lower-case, type names upper-case, only the parentheses
// precedence needs. Parse(m.String()) gives an equal model (Rule.Line aside)
// with the same String; Parse refuses a model whose canonical form would
// exceed MaxTextBytes, so that this always holds.
package model
