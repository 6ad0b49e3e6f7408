package jobs

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// LabelCABundle marks the ConfigMaps holding a CA bundle for agent Jobs.
const LabelCABundle = "unikube.dev/ca-bundle"

// CABundleConfigMap is the ConfigMap that carries the PEM bundle bundle
// to agent Jobs in ns. Its name is derived from the content, so applies
// with the same bundle share one, and a changed bundle is a new object
// that no running Job mounts.
func CABundleConfigMap(ns string, bundle []byte) *corev1.ConfigMap {
	sum := sha256.Sum256(bundle)
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "unikube-ca-" + hex.EncodeToString(sum[:])[:12], Namespace: ns,
			Labels: map[string]string{LabelManagedBy: ManagedBy, LabelCABundle: "true"}},
		Data: map[string]string{CAKey: string(bundle)},
	}
}

// EnsureCABundle makes the ConfigMap of bundle in ns (or finds it) and
// returns its name. One whose content is not what its name says (edited
// by hand) is refused rather than rewritten. The ConfigMap stays after the
// apply: it holds only public certificates, and a concurrent apply in the
// namespace may be mounting the same one. It is immutable: whoever may
// update ConfigMaps in the namespace must not be able to swap another CA
// in after the check (the agents would then trust their platform); one of
// that name made by someone else (the name follows from the public bundle)
// is used only when it is immutable too.
func EnsureCABundle(ctx context.Context, cs kubernetes.Interface, ns string, bundle []byte) (string, error) {
	want := CABundleConfigMap(ns, bundle)
	want.Immutable = ptr(true)
	_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, want, metav1.CreateOptions{})
	if err == nil {
		return want.Name, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("create ConfigMap %s/%s holding the platform's CA bundle for the agent Jobs: %w", ns, want.Name, err)
	}
	got, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, want.Name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("read ConfigMap %s/%s holding the platform's CA bundle: %w", ns, want.Name, err)
	}
	if got.Data[CAKey] != want.Data[CAKey] {
		return "", fmt.Errorf("ConfigMap %s/%s does not hold the CA bundle its name stands for (changed by hand?): delete it (kubectl -n %s delete configmap %s) and run again",
			ns, want.Name, ns, want.Name)
	}
	if got.Immutable == nil || !*got.Immutable {
		return "", fmt.Errorf("ConfigMap %s/%s holding the platform's CA bundle is not immutable, so its CA could be changed after this check (not made by unikube-state?): delete it (kubectl -n %s delete configmap %s) and run again",
			ns, want.Name, ns, want.Name)
	}
	return want.Name, nil
}

// CheckCAConfigMap checks that a ConfigMap a user named holds a PEM
// certificate under ca.crt, so a typo fails before anything is changed
// instead of as a pod that never starts.
func CheckCAConfigMap(ctx context.Context, cs kubernetes.Interface, ns, name string) error {
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("CA bundle ConfigMap %s/%s: %w", ns, name, err)
	}
	data, ok := cm.Data[CAKey]
	if !ok {
		return fmt.Errorf("CA bundle ConfigMap %s/%s has no key %q (put the PEM certificates there)", ns, name, CAKey)
	}
	if err := ParsePEM([]byte(data)); err != nil {
		return fmt.Errorf("CA bundle ConfigMap %s/%s, key %s: %w", ns, name, CAKey, err)
	}
	return nil
}

// ParsePEM checks that bundle holds at least one certificate and nothing
// that fails to parse as one.
func ParsePEM(bundle []byte) error {
	n := 0
	for rest := bundle; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return fmt.Errorf("certificate %d: %w", n+1, err)
		}
		n++
	}
	if n == 0 {
		return errors.New("no PEM certificate found (want -----BEGIN CERTIFICATE-----)")
	}
	return nil
}
