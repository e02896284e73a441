package conditions

import (
	"time"

	"cel.dev/cel-go/common/types"
)

// Rebind makes a bind img and now exactly as NewActivation(img, now)
// does, reusing a's copy of the image, and unbinds target and variables.
// It lets an evaluator keep activations in a pool: a must not be in use
// by another evaluation, and nothing read from it may outlive the
// evaluation that used it.
func (a *Activation) Rebind(img *Image, now time.Time) {
	if a.image == nil {
		a.image = new(Image)
	}
	*a.image = *img
	if !img.Created.IsZero() {
		a.image.Age = now.Sub(img.Created)
	}
	a.now = types.Timestamp{Time: now}
	a.target = nil
	a.vars = nil
}
