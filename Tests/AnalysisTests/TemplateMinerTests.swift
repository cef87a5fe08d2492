import Testing

@testable import Analysis

@Suite struct TemplateMinerTests {
    @Test func masksValues() {
        let words = TemplateMiner.maskedWords(
            "Connected to 10.0.0.7:5432 in 250ms as user=alice id 0x1f2e3d4c path /var/lib/db url https://x.io/a?b=1 ok=true")
        #expect(words == ["Connected", "to", "<*>:<*>", "in", "<*>", "as", "user=alice", "id", "<*>", "path", "<*>", "url",
                          "https://<*>", "ok=<*>"])
    }

    @Test func keepsNamesWithADigit() {
        #expect(TemplateMiner.maskedWords("port 22 ssh2 log4j") == ["port", "<*>", "ssh2", "log4j"])
        #expect(TemplateMiner.maskedWords("block blk_-4242 from msra-sa-41 x-1") == ["block", "<*>", "from", "<*>", "x-<*>"])
    }

    @Test func foldsRunsOfValues() {
        #expect(TemplateMiner.maskedWords("delete 1 2 3 done") == ["delete", "<*>", "done"])
        #expect(TemplateMiner.maskedWords("delete 1 2 3 done", collapseRuns: false) == ["delete", "<*>", "<*>", "<*>", "done"])
    }

    @Test func variablesBecomeWildcardsAndShapesShareAnId() {
        var miner = TemplateMiner()
        let a = miner.add("Accepted password for alice from 10.0.0.1 port 5000 ssh2")
        let b = miner.add("Accepted password for bob from 10.0.0.2 port 6000 ssh2")
        #expect(a == b)
        #expect(miner.template(id: a)?.text == "Accepted password for <*> from <*> port <*> ssh2")
        #expect(miner.template(id: a)?.count == 2)
    }

    @Test func differentMessagesGetDifferentIds() {
        var miner = TemplateMiner()
        let open = miner.add("Connection opened to 10.0.0.1")
        let close = miner.add("Connection closed by 10.0.0.1")
        let disk = miner.add("Disk full on /dev/sda1")
        #expect(Set([open, close, disk]).count == 3)
        #expect(miner.templates.count == 3)
    }

    @Test func keyValueKeysSurviveGeneralisation() {
        var miner = TemplateMiner()
        let a = miner.add("session opened user=alice tty=ssh")
        let b = miner.add("session opened user=bob tty=ssh")
        #expect(a == b)
        #expect(miner.template(id: a)?.text == "session opened user=<*> tty=ssh")
    }

    @Test func matchDoesNotLearn() {
        var miner = TemplateMiner()
        let id = miner.add("Job 17 finished in 30 s")
        #expect(miner.match("Job 99 finished in 12 s") == id)
        #expect(miner.match("Something else entirely") == nil)
        #expect(miner.template(id: id)?.count == 1)
        #expect(miner.templates.count == 1)
    }

    static let corpus: [String] = {
        var messages: [String] = []
        let users = ["alice", "bob", "carol", "dave"]
        for i in 0..<60 {
            messages.append("Accepted password for \(users[i % 4]) from 10.0.\(i % 7).\(i) port \(4000 + i) ssh2")
            messages.append("Received block blk_\(i * 7919) of size \(i * 13) from /10.1.0.\(i % 5)")
            if i % 3 == 0 { messages.append("Shutting down worker \(i) because queue is empty") }
            if i % 5 == 0 { messages.append("Config key=\(users[i % 4]) reloaded") }
            messages.append("Task \(i) state changed from RUNNING to \(i % 2 == 0 ? "DONE" : "FAILED")")
        }
        return messages
    }()

    @Test func deterministic() {
        var first = TemplateMiner()
        var second = TemplateMiner()
        let a = Self.corpus.map { first.add($0) }
        let b = Self.corpus.map { second.add($0) }
        #expect(a == b)
        #expect(first.templates == second.templates)
    }

    @Test func restoreThenMatchGivesTheSameIds() {
        var miner = TemplateMiner()
        for message in Self.corpus { miner.add(message) }
        let expected = Self.corpus.map { miner.match($0) }
        #expect(expected.allSatisfy { $0 != nil })
        let restored = TemplateMiner(restoring: miner.templates)
        #expect(restored.templates == miner.templates)
        #expect(Self.corpus.map { restored.match($0) } == expected)
        // New templates continue after the highest id.
        var grown = restored
        let fresh = grown.add("A message of a kind never seen before")
        #expect(fresh == (miner.templates.map(\.id).max() ?? 0) + 1)
    }

    @Test func idsResolveToLiveTemplates() {
        var miner = TemplateMiner()
        let ids = Self.corpus.map { miner.add($0) }
        for id in ids {
            #expect(miner.template(id: id)?.id == miner.resolve(id))
        }
        #expect(miner.resolve(12345) == 12345)
        #expect(miner.template(id: 12345) == nil)
        // Every message's id is among the live templates, and counts add up.
        let live = Set(miner.templates.map(\.id))
        #expect(ids.allSatisfy { live.contains(miner.resolve($0)) })
        #expect(miner.templates.reduce(0) { $0 + $1.count } == Self.corpus.count)
    }

    @Test func corpusFindsItsFiveShapes() {
        var miner = TemplateMiner()
        for message in Self.corpus { miner.add(message) }
        #expect(miner.templates.map(\.text) == [
            "Accepted password for <*> from <*> port <*> ssh2",
            "Received block <*> of size <*> from <*>",
            "Shutting down worker <*> because queue is empty",
            "Config key=<*> reloaded",
            "Task <*> state changed from RUNNING to <*>",
        ])
    }

    @Test func separatesEnumLikeWordsInShortMessages() {
        var miner = TemplateMiner()
        let up = miner.add("Task 1 state changed from RUNNING to DONE")
        let down = miner.add("Task 2 state changed from RUNNING to FAILED")
        // 6 of 7 constant words agree, above the threshold: one template.
        #expect(up == down)
        let other = miner.add("Node 3 is unreachable")
        #expect(other != up)
    }

    @Test func patternWordsMatchOnlyTheirShape() {
        #expect(TemplateMiner.wordMatches("user=<*>", "user=bob"))
        #expect(!TemplateMiner.wordMatches("user=<*>", "uid=bob"))
        #expect(TemplateMiner.wordMatches("<*>|<*>|<*>", "1|2|3"))
        #expect(!TemplateMiner.wordMatches("<*>|<*>|<*>", "closeNotification..."))
        #expect(TemplateMiner.generalise("user=alice", "user=bob") == "user=<*>")
        #expect(TemplateMiner.generalise("alice", "bob") == "<*>")
    }
}

@Suite struct MaskingMechanicsTests {
    /// The delimiter classes tested by bitmask are exactly the characters their documentation
    /// lists, over every byte value.
    @Test func delimiterClassesAreTheListedCharacters() {
        let major = Set(#",!;:=|"'[](){}<>"#.utf8), minor = Set(".-+@#$%&".utf8)
        for byte in UInt8.min...UInt8.max {
            #expect(TemplateMiner.isMajorDelimiter(byte) == major.contains(byte), "byte \(byte)")
            #expect(TemplateMiner.isMinorDelimiter(byte) == minor.contains(byte), "byte \(byte)")
        }
    }

    /// The hash that reads the last partial chunk in one load gives the byte-by-byte hash,
    /// whatever lies past the end.
    @Test func theHashReadingPastTheEndIsTheHash() {
        var generator = SeededGenerator(seed: 3)
        for length in 0..<48 {
            var bytes = (0..<(length + 8)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            let expected = TemplateMiner.hash(bytes, 0, length)
            for index in length..<bytes.count { bytes[index] = ~bytes[index] }
            let got = bytes.withUnsafeBytes { TemplateMiner.hashReadingPast($0.baseAddress!, length) }
            #expect(got == expected, "length \(length)")
        }
    }

    /// Splitting a message into words eight bytes at a time gives the words one at a time
    /// would: spaces, tabs and line ends split, other control bytes and UTF-8 do not.
    @Test func wordsAreSplitOnlyAtWhitespace() {
        let alphabet: [String] = ["a", "Z", "7", " ", "\t", "\n", "\r", "\u{1}", "\u{1F}", "=", ".", "-", "/", ":", "é", "日", "0x1f", "abcdefghijkl"]
        var generator = SeededGenerator(seed: 9)
        for _ in 0..<500 {
            let message = (0..<Int(generator.next() % 40)).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] }.joined()
            let words = message.utf8.split(whereSeparator: { $0 == 32 || $0 == 9 || $0 == 10 || $0 == 13 }).map { String(decoding: $0, as: UTF8.self) }
            let oneByOne = words.flatMap { TemplateMiner.maskedWords($0, collapseRuns: false) }
            #expect(TemplateMiner.maskedWords(message, collapseRuns: false) == oneByOne, "\(Array(message.utf8))")
        }
    }
}
