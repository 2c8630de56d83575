package train

// FileName exposes fileName to the tests.
var FileName = fileName

// Number exposes number (a cell as float64, NaN for null) to the tests.
var Number = number
