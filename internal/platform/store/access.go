package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/apitypes"
)

// Grant is stored and answered as the API's wire type.
type Grant = apitypes.Grant

// PutGrant creates or replaces the subject's grant at the scope.
func (s *Store) PutGrant(ctx context.Context, g Grant) error {
	_, err := s.exec(ctx, `INSERT INTO grants (project, state, subject, role, created_at, created_by, token_user) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (project, state, subject) DO UPDATE SET role = excluded.role, created_at = excluded.created_at, created_by = excluded.created_by,
			token_user = excluded.token_user`,
		g.Project, g.State, g.Subject, g.Role, nanos(g.CreatedAt), g.CreatedBy, g.TokenUser)
	if err != nil {
		return fmt.Errorf("put grant: %w", err)
	}
	return nil
}

// DeleteGrant removes the subject's grant at the scope.
func (s *Store) DeleteGrant(ctx context.Context, project, state, subject string) error {
	return s.execOne(ctx, fmt.Sprintf("grant for %s", subject),
		`DELETE FROM grants WHERE project = $1 AND state = $2 AND subject = $3`, project, state, subject)
}

// ListGrants returns the grants at exactly one scope (state "" = project).
func (s *Store) ListGrants(ctx context.Context, project, state string) ([]Grant, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT project, state, subject, role, created_at, created_by, token_user FROM grants
		WHERE project = $1 AND state = $2 ORDER BY subject`, project, state)
	if err != nil {
		return nil, fmt.Errorf("list grants: %w", err)
	}
	defer rows.Close()
	out := []Grant{}
	for rows.Next() {
		var g Grant
		var created int64
		if err := rows.Scan(&g.Project, &g.State, &g.Subject, &g.Role, &created, &g.CreatedBy, &g.TokenUser); err != nil {
			return nil, fmt.Errorf("list grants: %w", err)
		}
		g.CreatedAt = fromNanos(created)
		out = append(out, g)
	}
	return out, rows.Err()
}

// RolesFor returns the roles any of the subjects holds on the project and, if
// state is not empty, on that state: a state grant adds to the project grant.
// A token grant matches only when it is bound to tokenUser, the user owning
// the caller's token (a token name alone is claimable by anyone).
// One fixed statement (subjects are filtered here) so it stays prepared.
func (s *Store) RolesFor(ctx context.Context, project, state string, subjects []string, tokenUser string) ([]string, error) {
	if len(subjects) == 0 {
		return nil, nil
	}
	rows, err := s.query(ctx, `SELECT subject, role, token_user FROM grants WHERE project = $1 AND (state = '' OR state = $2)`, project, state)
	if err != nil {
		return nil, fmt.Errorf("look up grants: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var sub, r, owner string
		if err := rows.Scan(&sub, &r, &owner); err != nil {
			return nil, fmt.Errorf("look up grants: %w", err)
		}
		if strings.HasPrefix(sub, "token:") && (owner == "" || owner != tokenUser) {
			continue
		}
		for _, want := range subjects {
			if sub == want {
				out = append(out, r)
				break
			}
		}
	}
	return out, rows.Err()
}

// ProjectsVisibleTo returns the names of projects where any subject holds a
// grant on the project or on one of its states (token grants: bound to
// tokenUser, as in RolesFor).
func (s *Store) ProjectsVisibleTo(ctx context.Context, subjects []string, tokenUser string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(subjects) == 0 {
		return out, nil
	}
	args := make([]any, 0, len(subjects)+1)
	ph := make([]string, len(subjects))
	for i, sub := range subjects {
		args = append(args, sub)
		ph[i] = fmt.Sprintf("$%d", i+1)
	}
	args = append(args, tokenUser)
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT project FROM grants WHERE subject IN (`+strings.Join(ph, ", ")+`)
		AND (subject NOT LIKE 'token:%' OR (token_user <> '' AND token_user = $`+fmt.Sprint(len(args))+`))`, args...)
	if err != nil {
		return nil, fmt.Errorf("list visible projects: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, fmt.Errorf("list visible projects: %w", err)
		}
		out[p] = true
	}
	return out, rows.Err()
}

// Token kinds.
const (
	TokenAdmin  = apitypes.TokenAdmin
	TokenUser   = apitypes.TokenUser
	TokenJob    = apitypes.TokenJob
	TokenUpload = apitypes.TokenUpload
)

// Token is an API token as stored: the API's view of it and the sha256 of
// its secret, which never leaves the server.
type Token struct {
	apitypes.Token
	Hash string `json:"-"`
}

const tokenCols = `id, name, hash, kind, username, groups_csv, project, state, version_digest, created_at, created_by, expires_at, revoked_at, parent_id`

func scanToken(sc interface{ Scan(...any) error }) (Token, error) {
	var t Token
	var groups string
	var created int64
	var expires, revoked sql.NullInt64
	if err := sc.Scan(&t.ID, &t.Name, &t.Hash, &t.Kind, &t.User, &groups, &t.Project, &t.State, &t.VersionDigest, &created, &t.CreatedBy, &expires, &revoked, &t.ParentID); err != nil {
		return t, err
	}
	if groups != "" {
		t.Groups = strings.Split(groups, ",")
	}
	t.CreatedAt, t.ExpiresAt, t.RevokedAt = fromNanos(created), ptrTime(expires), ptrTime(revoked)
	return t, nil
}

// CreateToken inserts a token; ErrExists when its user already has a live
// token of that name (names are unique per user, so this reveals only the
// caller's own names). A revoked or expired token gives its name up: its
// row is renamed NAME~ID (never a valid name) and kept for the record, so
// automation can replace a token under the same name and grants to
// token:USER:NAME carry over to the replacement.
func (s *Store) CreateToken(ctx context.Context, t Token) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE tokens SET name = name || '~' || id
			WHERE username = $1 AND name = $2 AND (revoked_at IS NOT NULL OR expires_at <= $3)`,
			t.User, t.Name, nanos(t.CreatedAt)); err != nil {
			return fmt.Errorf("create token: free the name of a dead token: %w", err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO tokens (`+tokenCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
			t.ID, t.Name, t.Hash, t.Kind, t.User, strings.Join(t.Groups, ","), t.Project, t.State, t.VersionDigest,
			nanos(t.CreatedAt), t.CreatedBy, nullNanos(t.ExpiresAt), nullNanos(t.RevokedAt), t.ParentID)
		return err
	})
	if isUnique(err) {
		return fmt.Errorf("token %q: %w", t.Name, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	return nil
}

// TokenByHash finds a token by the sha256 of its secret.
func (s *Store) TokenByHash(ctx context.Context, hash string) (Token, error) {
	t, err := scanToken(s.queryRow(ctx, `SELECT `+tokenCols+` FROM tokens WHERE hash = $1`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("token: %w", ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("look up token: %w", err)
	}
	return t, nil
}

// TokenByName finds user's token named name (user "" for tokens without a
// user, like the admin token).
func (s *Store) TokenByName(ctx context.Context, user, name string) (Token, error) {
	t, err := scanToken(s.db.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE username = $1 AND name = $2`, user, name))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("token %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("look up token: %w", err)
	}
	return t, nil
}

// TokensNamed returns every token named name, of any user.
func (s *Store) TokensNamed(ctx context.Context, name string) ([]Token, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE name = $1 ORDER BY username`, name)
	if err != nil {
		return nil, fmt.Errorf("look up tokens: %w", err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("look up tokens: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// MintersLive reports whether the token with id parentID and every token
// up its chain of minters is neither revoked nor expired at now (the walk
// stops at a token no longer stored, like a rotated admin token). Revoking a
// token revokes its children too, but a child created while the revocation
// ran (or on a replica still trusting its cached parent) would escape that:
// checking the chain at use closes the gap.
func (s *Store) MintersLive(ctx context.Context, parentID string, now time.Time) (bool, error) {
	var dead int
	err := s.queryRow(ctx, `WITH RECURSIVE chain(id, parent_id, revoked_at, expires_at) AS (
			SELECT id, parent_id, revoked_at, expires_at FROM tokens WHERE id = $1
			UNION SELECT t.id, t.parent_id, t.revoked_at, t.expires_at FROM tokens t JOIN chain c ON t.id = c.parent_id)
		SELECT COUNT(*) FROM chain WHERE revoked_at IS NOT NULL OR expires_at <= $2`, parentID, nanos(now)).Scan(&dead)
	if err != nil {
		return false, fmt.Errorf("check the tokens that minted a token: %w", err)
	}
	return dead == 0, nil
}

// TokenByID finds a token by its id.
func (s *Store) TokenByID(ctx context.Context, id string) (Token, error) {
	t, err := scanToken(s.queryRow(ctx, `SELECT `+tokenCols+` FROM tokens WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("token %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("look up token: %w", err)
	}
	return t, nil
}

// ListTokens returns the user and admin tokens (job and upload tokens are not listed),
// for one user or, with user "", for everyone.
func (s *Store) ListTokens(ctx context.Context, user string) ([]Token, error) {
	q := `SELECT ` + tokenCols + ` FROM tokens WHERE kind <> 'job' AND kind <> 'upload'`
	args := []any{}
	if user != "" {
		q += ` AND username = $1`
		args = append(args, user)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY name`, args...)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	out := []Token{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// ErrLastAdmin refuses to revoke the only live admin token: nobody could
// administer the server afterwards (rotate it with --admin-token instead).
var ErrLastAdmin = errors.New("the last admin token cannot be revoked: rotate it by restarting the server with --admin-token/UNIKUBE_ADMIN_TOKEN instead")

// revokeOrphanedScopedTokens revokes, for good, the job tokens of project
// (one state, or all with state "") whose version is gone from their state
// and the upload tokens whose state is gone. Checking on use alone would let
// a token work again once the same manifest or state name comes back.
func revokeOrphanedScopedTokens(ctx context.Context, tx *sql.Tx, project, state string, at time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = $3
		WHERE revoked_at IS NULL AND project = $1 AND ($2 = '' OR state = $2) AND (
			(kind = '`+TokenJob+`' AND NOT EXISTS (SELECT 1 FROM versions v
				WHERE v.project = tokens.project AND v.state = tokens.state AND v.digest = tokens.version_digest))
			OR (kind = '`+TokenUpload+`' AND NOT EXISTS (SELECT 1 FROM states st
				WHERE st.project = tokens.project AND st.name = tokens.state)))`, project, state, nanos(at))
	if err != nil {
		return fmt.Errorf("revoke the job and upload tokens of deleted versions of %s: %w", project, err)
	}
	return nil
}

// RevokeToken marks the token with id revoked, and with it every live token
// it minted, recursively. It returns how many tokens were revoked;
// ErrNotFound when the token is unknown or already revoked, ErrLastAdmin
// for the only live admin token.
func (s *Store) RevokeToken(ctx context.Context, id string, at time.Time) (int64, error) {
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var kind string
		var revoked sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT kind, revoked_at FROM tokens WHERE id = $1`, id).Scan(&kind, &revoked)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && revoked.Valid) {
			return fmt.Errorf("token %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("revoke token: %w", err)
		}
		if kind == TokenAdmin {
			var admins int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM tokens WHERE kind = 'admin' AND revoked_at IS NULL`).Scan(&admins); err != nil {
				return fmt.Errorf("revoke token: count admin tokens: %w", err)
			}
			if admins <= 1 {
				return ErrLastAdmin
			}
		}
		// UNION (not UNION ALL) stops at a cycle, should one ever exist.
		res, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = $2 WHERE revoked_at IS NULL AND id IN (
			WITH RECURSIVE tree(id) AS (SELECT CAST($1 AS TEXT) UNION SELECT t.id FROM tokens t JOIN tree ON t.parent_id = tree.id)
			SELECT id FROM tree)`, id, nanos(at))
		if err != nil {
			return fmt.Errorf("revoke token: %w", err)
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n, err
}

// ReplaceAdminToken makes hash the only live admin token named name.
func (s *Store) ReplaceAdminToken(ctx context.Context, t Token) error {
	var err error
	// Replicas starting together race on the same name: the loser's INSERT
	// hits the unique key once the winner commits; another try deletes the
	// winner's row (the same admin token) and succeeds.
	for attempt := 1; attempt <= 3; attempt++ {
		if err = s.replaceAdminToken(ctx, t); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
		}
	}
	return err
}

func (s *Store) replaceAdminToken(ctx context.Context, t Token) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE kind = 'admin' AND username = '' AND name = $1`, t.Name); err != nil {
			return fmt.Errorf("replace admin token: %w", err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO tokens (`+tokenCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
			t.ID, t.Name, t.Hash, t.Kind, t.User, strings.Join(t.Groups, ","), t.Project, t.State, t.VersionDigest,
			nanos(t.CreatedAt), t.CreatedBy, nullNanos(t.ExpiresAt), nullNanos(t.RevokedAt), t.ParentID)
		if err != nil {
			return fmt.Errorf("replace admin token: %w", err)
		}
		return nil
	})
}

// CountAdminTokens counts live admin tokens.
func (s *Store) CountAdminTokens(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM tokens WHERE kind = 'admin' AND revoked_at IS NULL`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count admin tokens: %w", err)
	}
	return n, nil
}

// DeleteExpiredJobTokens drops job and upload tokens that expired before the cutoff.
func (s *Store) DeleteExpiredJobTokens(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.exec(ctx, `DELETE FROM tokens WHERE (kind = 'job' OR kind = 'upload') AND expires_at < $1`, nanos(before))
	if err != nil {
		return 0, fmt.Errorf("delete expired job tokens: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
