package conditions

import (
	"time"

	"cel.dev/cel-go/common/types"
)

// Rebind makes a bind img and now exactly as NewActivation(img, now)
// does, and unbinds target and variables. It lets an evaluator keep
// activations in a pool: a must not be in use by another evaluation,
// nothing read from it may outlive the evaluation that used it, and img
// must not change while a is bound to it. An image without a creation
// time is bound as it is (there is no Age to derive); otherwise a's own
// copy is reused.
func (a *Activation) Rebind(img *Image, now time.Time) {
	if img.Created.IsZero() {
		a.image = img
	} else {
		if a.own == nil {
			a.own = new(Image)
		}
		*a.own = *img
		a.own.Age = now.Sub(img.Created)
		a.image = a.own
	}
	a.now = types.Timestamp{Time: now}
	a.target = nil
	a.vars = nil
}

// BindTarget binds target in place: the counterpart of WithTarget for an
// evaluator that owns a (for instance pooled and Rebind-ed): no copy is
// made. Image-scope expressions cannot read target, so binding it on an
// activation they share is safe; nil unbinds it.
func (a *Activation) BindTarget(t *Target) { a.target = t }
