package artifacts

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Copy writes a committed artifact to dst: every payload file streamed and
// re-hashed (a file that does not match its recorded digest stops the copy),
// then the sidecar, with the same type, name, properties, producer and
// inputs, so the copy has the same digest. Nothing is visible at dst until
// the copy is whole; an artifact already committed there is ErrExists.
func (s *Store) Copy(ctx context.Context, src *Artifact, dst URI) (*Sidecar, error) {
	w, err := s.Create(ctx, dst, src.Type, src.Name)
	if err != nil {
		return nil, err
	}
	for _, f := range src.Files {
		if err := copyFile(ctx, src, w, f.Path); err != nil {
			return nil, errors.Join(fmt.Errorf("copy %s to %s: %w", src.URI, Redact(dst.String()), err), w.Abort(context.WithoutCancel(ctx)))
		}
	}
	for k, v := range src.Properties {
		w.SetProperty(k, v)
	}
	if src.Producer != nil {
		w.SetProducer(*src.Producer)
	}
	for _, in := range src.Inputs {
		w.AddInput(in)
	}
	sc, err := w.Commit(ctx)
	if err != nil {
		return nil, err
	}
	if sc.Digest != src.Digest {
		return nil, fmt.Errorf("copy %s: %w: digest %s, source %s", src.URI, ErrIntegrity, sc.Digest, src.Digest)
	}
	return sc, nil
}

func copyFile(ctx context.Context, src *Artifact, w *Writer, name string) error {
	r, err := src.Open(ctx, name)
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := w.Create(ctx, name)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
