package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/tallyhq/tally/core"
)

// roleFlags collects repeated --role flags.
type roleFlags []string

func (r *roleFlags) String() string { return strings.Join(*r, ",") }

func (r *roleFlags) Set(v string) error {
	for _, name := range strings.Split(v, ",") {
		role, err := core.ParseRole(strings.ToUpper(strings.TrimSpace(name)))
		if err != nil {
			return fmt.Errorf("unknown role %q (want ADMIN, READ, RESERVATIONS, OFFLINE, DROPDEVICE or KEYS)", name)
		}
		*r = append(*r, role.String())
	}
	return nil
}

// parseInterleaved parses a command's flags wherever they stand among its
// positional arguments ("users create NAME --role READ"), and checks that
// it got between min and max positional arguments. After "--" everything
// is positional.
func parseInterleaved(fs *flag.FlagSet, args []string, min, max int, shape string) ([]string, error) {
	var positional []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	if len(positional) < min || (max >= 0 && len(positional) > max) {
		return nil, usageError("usage: tallyctl %s", shape)
	}
	return positional, nil
}

// readPasswordFile reads a password from a file; a trailing line end is
// not part of it.
func readPasswordFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	password := strings.TrimRight(string(data), "\r\n")
	if password == "" {
		return "", fmt.Errorf("read password: %s is empty", path)
	}
	return password, nil
}

// user is a row of the users list as the API sends it.
type user struct {
	Name            string   `json:"name"`
	Roles           []string `json:"roles"`
	Created         string   `json:"created"`
	PasswordChanged string   `json:"passwordChanged"`
}

func (c *cli) users(args []string) error {
	sub, args, err := subcommand("users", args, "list", "create", "set-roles", "set-password", "delete")
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		if _, err := parseArgs(c.commandFlags("users list"), args, 0, 0, "users list"); err != nil {
			return err
		}
		var list struct {
			Total int    `json:"total"`
			Items []user `json:"items"`
		}
		return c.get(apiPath("users"), nil, &list, func() {
			printUsers(c.stdout, list.Items)
			fmt.Fprintf(c.stdout, "%d users\n", list.Total)
		})
	case "create":
		const shape = "users create NAME --role ROLE [--role ROLE]... --password-file FILE"
		fs := c.commandFlags("users create")
		var roles roleFlags
		var pwFile string
		fs.Var(&roles, "role", "")
		fs.StringVar(&pwFile, "password-file", "", "")
		rest, err := parseInterleaved(fs, args, 1, 1, shape)
		if err != nil {
			return err
		}
		if len(roles) == 0 || pwFile == "" {
			return usageError("usage: tallyctl %s", shape)
		}
		pw, err := readPasswordFile(pwFile)
		if err != nil {
			return err
		}
		body, err := json.Marshal(map[string]any{"name": rest[0], "roles": []string(roles), "password": pw})
		if err != nil {
			return err
		}
		var u user
		return c.send(http.MethodPost, apiPath("users"), body, "application/json", &u, func() {
			fmt.Fprintf(c.stdout, "created user %s with roles %s\n", u.Name, strings.Join(u.Roles, ","))
		})
	case "set-roles":
		const shape = "users set-roles NAME --role ROLE [--role ROLE]..."
		fs := c.commandFlags("users set-roles")
		var roles roleFlags
		fs.Var(&roles, "role", "")
		rest, err := parseInterleaved(fs, args, 1, 1, shape)
		if err != nil {
			return err
		}
		if len(roles) == 0 {
			return usageError("usage: tallyctl %s", shape)
		}
		body, err := json.Marshal(map[string]any{"roles": []string(roles)})
		if err != nil {
			return err
		}
		var u user
		return c.send(http.MethodPut, apiPath("users", rest[0]), body, "application/json", &u, func() {
			fmt.Fprintf(c.stdout, "%s now has the roles %s\n", u.Name, strings.Join(u.Roles, ","))
		})
	case "set-password":
		const shape = "users set-password NAME --password-file FILE"
		fs := c.commandFlags("users set-password")
		var pwFile string
		fs.StringVar(&pwFile, "password-file", "", "")
		rest, err := parseInterleaved(fs, args, 1, 1, shape)
		if err != nil {
			return err
		}
		if pwFile == "" {
			return usageError("usage: tallyctl %s", shape)
		}
		pw, err := readPasswordFile(pwFile)
		if err != nil {
			return err
		}
		body, err := json.Marshal(map[string]string{"password": pw})
		if err != nil {
			return err
		}
		var u user
		return c.send(http.MethodPut, apiPath("users", rest[0]), body, "application/json", &u, func() {
			fmt.Fprintf(c.stdout, "changed the password of %s; its earlier logins have ended\n", u.Name)
		})
	default: // delete
		rest, err := parseArgs(c.commandFlags("users delete"), args, 1, 1, "users delete NAME")
		if err != nil {
			return err
		}
		return c.send(http.MethodDelete, apiPath("users", rest[0]), nil, "", nil, func() {
			fmt.Fprintf(c.stdout, "deleted user %s\n", rest[0])
		})
	}
}

// passwd changes the password of the user tallyctl logs in as: the current
// one comes from the usual password source, the new one from a file.
func (c *cli) passwd(args []string) error {
	const shape = "passwd --password-file NEW"
	fs := c.commandFlags("passwd")
	var pwFile string
	fs.StringVar(&pwFile, "password-file", "", "")
	if _, err := parseArgs(fs, args, 0, 0, shape); err != nil {
		return err
	}
	if pwFile == "" {
		return usageError("usage: tallyctl %s", shape)
	}
	newPassword, err := readPasswordFile(pwFile)
	if err != nil {
		return err
	}
	current, err := c.password()
	if err != nil {
		return err
	}
	body, err := json.Marshal(map[string]string{"current": current, "new": newPassword})
	if err != nil {
		return err
	}
	return c.send(http.MethodPut, apiPath("auth", "password"), body, "application/json", nil, func() {
		fmt.Fprintf(c.stdout, "changed the password of %s; log in with the new one\n", c.opts.user)
	})
}

// auditLog is the answer of GET /api/v1/audit.
type auditLog struct {
	Total    int                `json:"total"`
	Items    []core.AuditRecord `json:"items"`
	Verified bool               `json:"verified"`
}

// errAuditBroken is returned by audit when the server says the hash chain
// does not verify.
var errAuditBroken = errors.New("the audit log does not verify: a record was changed, removed or reordered")

func (c *cli) audit(args []string) error {
	fs := c.commandFlags("audit")
	var after uint64
	var limit int
	fs.Uint64Var(&after, "after", 0, "")
	fs.IntVar(&limit, "limit", 0, "")
	if _, err := parseArgs(fs, args, 0, 0, "audit [--after SEQ] [--limit N]"); err != nil {
		return err
	}
	if limit < 0 || limit > maxPageSize {
		return usageError("--limit must be between 1 and %d", maxPageSize)
	}
	q := url.Values{}
	if after > 0 {
		q.Set("after", strconv.FormatUint(after, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var log auditLog
	err := c.get(apiPath("audit"), q, &log, func() {
		printAudit(c.stdout, log.Items)
		fmt.Fprintf(c.stdout, "%d of %d audit records\n", len(log.Items), log.Total)
		if log.Verified {
			fmt.Fprintln(c.stdout, "chain verified")
		}
	})
	if err != nil {
		return err
	}
	if !log.Verified {
		return errAuditBroken
	}
	return nil
}
