package train

// FileName exposes fileName to the tests.
var FileName = fileName
