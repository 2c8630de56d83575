package tabular

// A hand-written ISO 8601 parser rather than time.Parse over several layouts:
// it runs once per value during inference of every column, where trying four
// layouts per value would dominate the cost of reading a CSV.

// parseTimestamp reads "YYYY-MM-DD", optionally followed by "T" or " " and
// "hh:mm:ss", optional fractional seconds and an optional "Z" or ±hh:mm
// offset. It returns seconds since the Unix epoch in UTC and the nanoseconds
// within that second.
func parseTimestamp(s string) (sec, nsec int64, ok bool) {
	days, ok := parseDate(s[:min(len(s), 10)])
	if !ok {
		return 0, 0, false
	}
	sec = days * 86400
	if len(s) == 10 {
		return sec, 0, true
	}
	t := s[10:]
	// "hh:mm:ss" after the separator.
	if len(t) < 9 || (t[0] != 'T' && t[0] != 't' && t[0] != ' ') || t[3] != ':' || t[6] != ':' {
		return 0, 0, false
	}
	h, ok1 := digits2(t[1:3])
	m, ok2 := digits2(t[4:6])
	sc, ok3 := digits2(t[7:9])
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || sc > 59 {
		return 0, 0, false
	}
	sec += int64(h*3600 + m*60 + sc)
	t = t[9:]
	if len(t) > 0 && t[0] == '.' {
		i := 1
		scale := int64(100_000_000)
		for ; i < len(t) && t[i] >= '0' && t[i] <= '9'; i++ {
			// Digits past nanoseconds are accepted and dropped.
			nsec += int64(t[i]-'0') * scale
			scale /= 10
		}
		if i == 1 {
			return 0, 0, false
		}
		t = t[i:]
	}
	switch {
	case len(t) == 0:
	case len(t) == 1 && (t[0] == 'Z' || t[0] == 'z'):
	case len(t) == 6 && (t[0] == '+' || t[0] == '-') && t[3] == ':':
		oh, ok1 := digits2(t[1:3])
		om, ok2 := digits2(t[4:6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return 0, 0, false
		}
		off := int64(oh*3600 + om*60)
		if t[0] == '+' {
			off = -off
		}
		sec += off
	default:
		return 0, 0, false
	}
	return sec, nsec, true
}

// parseDate reads exactly "YYYY-MM-DD" and returns days since 1970-01-01.
func parseDate(s string) (int64, bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	y1, ok1 := digits2(s[0:2])
	y2, ok2 := digits2(s[2:4])
	m, ok3 := digits2(s[5:7])
	d, ok4 := digits2(s[8:10])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return 0, false
	}
	y := y1*100 + y2
	if m < 1 || m > 12 || d < 1 || d > daysIn(m, y) {
		return 0, false
	}
	return daysFromCivil(int64(y), int64(m), int64(d)), true
}

func digits2(s string) (int, bool) {
	a, b := s[0]-'0', s[1]-'0'
	if a > 9 || b > 9 {
		return 0, false
	}
	return int(a)*10 + int(b), true
}

func daysIn(m, y int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil is Howard Hinnant's days_from_civil: proleptic Gregorian
// date to days since 1970-01-01, without going through time.Time.
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}
