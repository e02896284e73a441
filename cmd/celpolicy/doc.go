// Command celpolicy validates, evaluates and runs container-image
// replication policies written in CEL.
package main
