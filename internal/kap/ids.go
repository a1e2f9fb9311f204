package kap

// ValidNPI reports whether npi is a National Provider Identifier: ten digits
// whose last is the Luhn check digit computed over "80840" followed by the
// first nine (the card-issuer prefix the NPI standard prescribes).
func ValidNPI(npi string) bool {
	if len(npi) != 10 || !digits(npi) {
		return false
	}
	sum := 0
	// Luhn from the right, skipping the check digit: the ninth digit is doubled.
	payload := "80840" + npi[:9]
	for i := len(payload) - 1; i >= 0; i-- {
		d := int(payload[i] - '0')
		if (len(payload)-1-i)%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	check := (10 - sum%10) % 10
	return int(npi[9]-'0') == check
}

// ValidDEA reports whether dea is a DEA registration number: two upper-case
// letters and seven digits d1..d7 where (d1+d3+d5) + 2*(d2+d4+d6) ends in d7.
func ValidDEA(dea string) bool {
	if len(dea) != 9 || !upper(dea[:2]) || !digits(dea[2:]) {
		return false
	}
	d := func(i int) int { return int(dea[1+i] - '0') } // d(1) is dea[2]
	sum := d(1) + d(3) + d(5) + 2*(d(2)+d(4)+d(6))
	return sum%10 == d(7)
}

// digits reports whether s is all ASCII digits.
func digits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// upper reports whether s is all ASCII upper-case letters.
func upper(s string) bool {
	for i := range len(s) {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}
