package transport

import (
	"fmt"
	"net/http"

	"github.com/tallyhq/tally/core"
)

// createUserRequest is the body of POST /api/v1/users.
type createUserRequest struct {
	Name     *string  `json:"name"`
	Roles    []string `json:"roles"`
	Password *string  `json:"password"`
}

// updateUserRequest is the body of PUT /api/v1/users/{name}: new roles, a
// new password, or both.
type updateUserRequest struct {
	Roles    *[]string `json:"roles"`
	Password *string   `json:"password"`
}

// reservedUserName reports whether name is one the audit log gives to
// callers that are not users: tallyd setting itself up, and anonymous
// requests from loopback. No user may take them.
func reservedUserName(name string) bool { return name == anonymousName || name == "tallyd" }

// parseRoles reads role names; an unknown one is 400 invalid_user.
func parseRoles(names []string) ([]core.Role, error) {
	roles := make([]core.Role, 0, len(names))
	for _, n := range names {
		r, err := core.ParseRole(n)
		if err != nil {
			return nil, err
		}
		roles = append(roles, r)
	}
	return roles, nil
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) error {
	return listAll(s, w, r, (*core.State).Users)
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) error {
	u, err := s.readUser(r, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}

func (s *Server) readUser(r *http.Request, name string) (core.UserSummary, error) {
	var u core.UserSummary
	err := s.cfg.Store.Read(r.Context(), func(st *core.State) error {
		var err error
		u, err = st.User(name)
		return err
	})
	return u, err
}

// createUser adds a user. The password is checked against the policy and
// hashed here, outside the state machine; only the hash is replicated.
func (s *Server) createUser(w http.ResponseWriter, r *http.Request) error {
	var req createUserRequest
	if err := readJSON(w, r, maxUserBody, &req); err != nil {
		return err
	}
	if req.Name == nil || req.Password == nil {
		return badRequest("bad_json", `the body wants "name", "roles" and "password"`)
	}
	if reservedUserName(*req.Name) {
		return fmt.Errorf("%w: the user name %q is reserved for the audit log", core.ErrInvalidUser, *req.Name)
	}
	roles, err := parseRoles(req.Roles)
	if err != nil {
		return err
	}
	hash, err := s.newPasswordHash(r.Context(), *req.Password)
	if err != nil {
		return err
	}
	if err := s.apply(r, &core.CreateUser{Name: *req.Name, Roles: roles, PasswordHash: hash}); err != nil {
		return err
	}
	u, err := s.readUser(r, *req.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, u)
	return nil
}

// updateUser replaces a user's roles, password, or both. A new password
// ends the user's tokens; so does the loss of a role.
func (s *Server) updateUser(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	var req updateUserRequest
	if err := readJSON(w, r, maxUserBody, &req); err != nil {
		return err
	}
	if req.Roles == nil && req.Password == nil {
		return badRequest("bad_json", `the body wants "roles", "password" or both`)
	}
	var cmds []core.Command
	if req.Roles != nil {
		roles, err := parseRoles(*req.Roles)
		if err != nil {
			return err
		}
		cmds = append(cmds, &core.SetUserRoles{Name: name, Roles: roles})
	}
	if req.Password != nil {
		// Checked and hashed before anything is applied, so that a weak
		// password changes nothing.
		hash, err := s.newPasswordHash(r.Context(), *req.Password)
		if err != nil {
			return err
		}
		cmds = append(cmds, &core.SetPassword{Name: name, PasswordHash: hash, Revoke: true})
	}
	for _, c := range cmds {
		if err := s.apply(r, c); err != nil {
			return err
		}
	}
	u, err := s.readUser(r, name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) error {
	return s.applyNoContent(w, r, &core.DeleteUser{Name: r.PathValue("name")})
}
