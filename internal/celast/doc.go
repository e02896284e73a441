// Package celast holds small helpers over checked CEL ASTs shared by the
// policy tools (lint, test coverage).
package celast
