package tabular_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"strconv"
	"testing"

	"github.com/mlsteps/mlsteps/components/tabular"
)

// penguinsLike is about 2 MB of CSV shaped like penguins.csv, with a date
// column and some NA cells.
func penguinsLike() []byte {
	var b bytes.Buffer
	b.WriteString("Species,Island,Beak Length (mm),Beak Depth (mm),Flipper Length (mm),Body Mass (g),Sex,Date\n")
	species := []string{"Adelie", "Gentoo", "Chinstrap"}
	islands := []string{"Torgersen", "Biscoe", "Dream"}
	for i := 0; b.Len() < 2<<20; i++ {
		b.WriteString(species[i%3])
		b.WriteByte(',')
		b.WriteString(islands[i%3])
		b.WriteByte(',')
		if i%50 == 0 {
			b.WriteString("NA")
		} else {
			b.WriteString(strconv.FormatFloat(32+float64(i%280)/10, 'f', 1, 64))
		}
		b.WriteByte(',')
		b.WriteString(strconv.FormatFloat(13+float64(i%80)/10, 'f', 1, 64))
		b.WriteByte(',')
		b.WriteString(strconv.Itoa(170 + i%60))
		b.WriteByte(',')
		b.WriteString(strconv.Itoa(2700 + i%3600))
		b.WriteByte(',')
		if i%2 == 0 {
			b.WriteString("MALE")
		} else {
			b.WriteString("FEMALE")
		}
		b.WriteString(",2007-11-")
		b.WriteString(strconv.Itoa(10 + i%20))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// BenchmarkEncodingCSV is the floor: encoding/csv reading every record,
// building nothing.
func BenchmarkEncodingCSV(b *testing.B) {
	data := penguinsLike()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r := csv.NewReader(bytes.NewReader(data))
		r.ReuseRecord = true
		for {
			if _, err := r.Read(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkCSVReader(b *testing.B) {
	data := penguinsLike()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		rd, err := tabular.NewReader(context.Background(), bytes.NewReader(data), "penguins.csv", tabular.FormatCSV, tabular.Options{})
		if err != nil {
			b.Fatal(err)
		}
		for {
			rec, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			rec.Release()
		}
		rd.Close()
	}
}

func BenchmarkJSONLReader(b *testing.B) {
	var data bytes.Buffer
	for i := range 20000 {
		data.WriteString(`{"Species":"Adelie","Beak Length (mm)":39.1,"Body Mass (g)":`)
		data.WriteString(strconv.Itoa(3000 + i%1000))
		data.WriteString(`,"Sex":"MALE","Date":"2007-11-11"}` + "\n")
	}
	b.SetBytes(int64(data.Len()))
	b.ReportAllocs()
	for b.Loop() {
		rd, err := tabular.NewJSONLReader(bytes.NewReader(data.Bytes()), "penguins.jsonl", tabular.Options{})
		if err != nil {
			b.Fatal(err)
		}
		for {
			rec, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			rec.Release()
		}
		rd.Close()
	}
}
