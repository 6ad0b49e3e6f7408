// Package registryconfig writes the files the CNCF distribution registry
// (`registry serve CONFIG`) starts from: its htpasswd and its config.yml.
// The test environment's registry (internal/testenv) and the local
// cluster's node registries (test/cluster) both start from it, so the two
// stay one configuration that differs only in what each sets.
package registryconfig

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/crypto/bcrypt"
	"sigs.k8s.io/yaml"
)

// Config says what a registry serves and how.
type Config struct {
	// Dir holds config.yml and htpasswd; blobs go under Dir/data.
	Dir string
	// Addr is the listen address, host:port.
	Addr string
	// Realm names the basic-auth realm in the registry's challenge.
	Realm string
	// User and Password are the one htpasswd account.
	User, Password string
	// TLSCert and TLSKey are PEM files; both empty serves plain HTTP.
	TLSCert, TLSKey string
}

// Write writes Dir/htpasswd and Dir/config.yml (both 0600) and returns the
// config's path, the argument of `registry serve`.
func Write(c Config) (string, error) {
	switch {
	case c.Dir == "" || c.Addr == "" || c.User == "" || c.Password == "":
		return "", errors.New("registry config: Dir, Addr, User and Password are required")
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return "", errors.New("registry config: set both TLSCert and TLSKey, or neither")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(c.Password), bcrypt.MinCost)
	if err != nil {
		return "", fmt.Errorf("hash registry password: %w", err)
	}
	htpasswd := filepath.Join(c.Dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(c.User+":"+string(hash)+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write registry htpasswd: %w", err)
	}
	y, err := configYAML(c, htpasswd)
	if err != nil {
		return "", err
	}
	conf := filepath.Join(c.Dir, "config.yml")
	if err := os.WriteFile(conf, y, 0o600); err != nil {
		return "", fmt.Errorf("write registry config: %w", err)
	}
	return conf, nil
}

// The subset of distribution's configuration (version 0.1) we set.
type (
	file struct {
		Version string   `json:"version"`
		Log     logConf  `json:"log"`
		Storage storage  `json:"storage"`
		HTTP    httpConf `json:"http"`
		Auth    auth     `json:"auth"`
	}
	logConf struct {
		Level     string `json:"level"`
		AccessLog struct {
			Disabled bool `json:"disabled"`
		} `json:"accesslog"`
	}
	storage struct {
		Filesystem struct {
			RootDirectory string `json:"rootdirectory"`
		} `json:"filesystem"`
		Delete struct {
			Enabled bool `json:"enabled"`
		} `json:"delete"`
	}
	httpConf struct {
		Addr   string   `json:"addr"`
		Secret string   `json:"secret"`
		TLS    *tlsConf `json:"tls,omitempty"`
	}
	tlsConf struct {
		Certificate string `json:"certificate"`
		Key         string `json:"key"`
	}
	auth struct {
		Htpasswd struct {
			Realm string `json:"realm"`
			Path  string `json:"path"`
		} `json:"htpasswd"`
	}
)

func configYAML(c Config, htpasswd string) ([]byte, error) {
	// The HTTP secret signs upload state between requests; one registry
	// process only, so any fresh random value does.
	var secret [16]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return nil, fmt.Errorf("registry http secret: %w", err)
	}
	f := file{Version: "0.1"}
	f.Log.Level = "warn"
	f.Log.AccessLog.Disabled = true
	f.Storage.Filesystem.RootDirectory = filepath.Join(c.Dir, "data")
	f.Storage.Delete.Enabled = true
	f.HTTP.Addr, f.HTTP.Secret = c.Addr, hex.EncodeToString(secret[:])
	if c.TLSCert != "" {
		f.HTTP.TLS = &tlsConf{Certificate: c.TLSCert, Key: c.TLSKey}
	}
	f.Auth.Htpasswd.Realm, f.Auth.Htpasswd.Path = c.Realm, htpasswd
	y, err := yaml.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("registry config: %w", err)
	}
	return y, nil
}
