import Testing

@testable import Analysis

@Suite struct CSVTests {
    @Test func roundTripsHostileFields() {
        let rows = [
            ["LineId", "Content", "Note"],
            ["1", "plain", ""],
            ["2", "comma, inside", "quote \" inside"],
            ["3", "line\nbreak", "crlf\r\nbreak"],
            ["4", "\"fully quoted\"", " leading space"],
            ["5", "ünïcödé ✓", ",,,"],
        ]
        let text = CSV.format(rows)
        #expect(CSV.parse(text) == rows)
    }

    @Test func readsRFC4180Quoting() {
        let text = "a,b,c\n1,\"x,y\",\"say \"\"hi\"\"\"\n2,,\"multi\nline\"\n"
        let (header, rows) = CSV.parseWithHeader(text)
        #expect(header == ["a", "b", "c"])
        #expect(rows == [["1", "x,y", "say \"hi\""], ["2", "", "multi\nline"]])
    }

    @Test func handlesCRLFAndMissingFinalNewline() {
        #expect(CSV.parse("a,b\r\n1,2") == [["a", "b"], ["1", "2"]])
        #expect(CSV.parse("a,b\r\n1,2\r\n") == [["a", "b"], ["1", "2"]])
        #expect(CSV.parse("") == [])
    }

    @Test func quotesOnlyWhenNeeded() {
        #expect(CSV.escape("plain") == "plain")
        #expect(CSV.escape("a,b") == "\"a,b\"")
        #expect(CSV.escape("say \"x\"") == "\"say \"\"x\"\"\"")
        #expect(CSV.formatRow(["1", "a\nb"]) == "1,\"a\nb\"\r\n")
    }

    @Test func stripsByteOrderMarkFromHeader() {
        let (header, _) = CSV.parseWithHeader("\u{FEFF}LineId,Content\n1,x\n")
        #expect(header == ["LineId", "Content"])
    }
}
