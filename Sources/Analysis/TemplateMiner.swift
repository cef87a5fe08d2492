/// Learns message templates online: each message joins the most similar known template (whose
/// differing words become `<*>`) or starts a new one.
///
/// The design follows Drain (a tree keyed by word count and first word, a similarity threshold,
/// generalisation to `<*>`) with changes that let one configuration work across very different
/// logs:
/// - values are masked before mining: numbers, hex, IPs, host:port, paths, URLs, booleans, null,
///   and any part of a word that starts with a digit or is mostly digits (`ssh2` and `log4j`
///   stay words); a compound such as `msra-sa-41` or `node7.example.com` holding a value is one
///   value;
/// - words are split into pieces at `= : , ( ) [ ] { } ; | " ' < > !` and parts at
///   `. - + @ # $ % &`, so `user=alice` keeps its key when generalised (`user=<*>`), and two
///   `key=value` words with the same key count as agreeing;
/// - similarity counts only the template's constant words (a generalised word is neutral), so a
///   template does not drift away from its own messages as it generalises, and the threshold
///   can be strict (0.75) without splitting templates with many variables;
/// - a word is generalised only outside its shared prefix and suffix (cut at piece boundaries);
/// - lists of values of varying length: a message that fits no template word for word is
///   retried with each run of masked words folded into one `<*>` (see `Configuration`);
/// - a masked message seen before goes straight to the template that took it, if that template
///   still covers it (it would score 1 there), which skips the search for most messages;
/// - a template that becomes identical to another is merged into the older one, and
///   `resolve(_:)` maps old ids to the survivor.
///
/// Deterministic: the same messages in the same order give the same ids and templates (no
/// dictionary iteration order reaches a decision; ties go to the template with more constant
/// words, then to the lowest id). Works on UTF-8 bytes, and compares words by a 64-bit hash.
public struct TemplateMiner: Sendable {
    /// Tuning knobs; `default` is meant for every log source.
    public struct Configuration: Sendable {
        /// Minimum share of a template's constant words a message must repeat, position by
        /// position, to join it (Drain's `st`; Drain3 uses 0.4 over all words).
        public var similarityThreshold: Double
        /// Mask values before mining (see the type's documentation).
        public var maskVariables: Bool
        /// Lists of values of varying length: when a message with a run of masked words fits no
        /// template word for word, retry with each run folded into one `<*>`; a template that
        /// takes such a message keeps the folded form from then on. Fixed-length runs keep one
        /// `<*>` per word.
        public var collapseVariableRuns: Bool
        /// Upper bound on templates offered new messages per tree leaf; beyond it the least used
        /// one is retired from matching (bounds time on pathological input; it stays listed).
        public var maxTemplatesPerLeaf: Int

        public init(similarityThreshold: Double = 0.75, maskVariables: Bool = true, collapseVariableRuns: Bool = true,
                    maxTemplatesPerLeaf: Int = 1000) {
            self.similarityThreshold = similarityThreshold
            self.maskVariables = maskVariables
            self.collapseVariableRuns = collapseVariableRuns
            self.maxTemplatesPerLeaf = maxTemplatesPerLeaf
        }

        public static let `default` = Configuration()
    }

    /// A learned template: its words, `<*>` marking variables.
    public struct Template: Sendable, Equatable, Hashable {
        public let id: Int
        public var tokens: [String]
        /// Messages assigned to it (including those of templates merged into it).
        public var count: Int

        public init(id: Int, tokens: [String], count: Int) {
            self.id = id
            self.tokens = tokens
            self.count = count
        }

        /// The words joined by single spaces.
        public var text: String { tokens.joined(separator: " ") }
    }

    public static let wildcard = "<*>"

    /// A masked message: its words back to back in `bytes`, `ends[i]` the end of word `i`.
    struct MaskedMessage: Sendable {
        var bytes: [UInt8] = []
        var ends: [Int] = []
        var hashes: [UInt64] = []

        var count: Int { ends.count }
        func start(_ index: Int) -> Int { index == 0 ? 0 : ends[index - 1] }
        func word(_ index: Int) -> String { String(decoding: bytes[start(index)..<ends[index]], as: UTF8.self) }
        var words: [String] { (0..<count).map(word) }

        /// Whether two masked words follow each other.
        var hasRuns: Bool {
            guard hashes.count > 1 else { return false }
            for index in 1..<hashes.count where hashes[index] == TemplateMiner.wildcardHash && hashes[index - 1] == TemplateMiner.wildcardHash {
                return true
            }
            return false
        }

        /// The message with each run of masked words folded into one.
        func folded() -> MaskedMessage {
            var out = MaskedMessage()
            out.bytes.reserveCapacity(bytes.count)
            for index in 0..<count {
                if index > 0 && hashes[index] == TemplateMiner.wildcardHash && hashes[index - 1] == TemplateMiner.wildcardHash { continue }
                out.bytes.append(contentsOf: bytes[start(index)..<ends[index]])
                out.ends.append(out.bytes.count)
                out.hashes.append(hashes[index])
            }
            return out
        }
    }

    /// Template words with each run of `<*>` folded into one.
    static func folded(_ tokens: [String]) -> [String] {
        var out: [String] = []
        out.reserveCapacity(tokens.count)
        for token in tokens where !(token == wildcard && out.last == wildcard) { out.append(token) }
        return out
    }

    /// How a template word matches: literally, anything, or as a pattern with `<*>` inside.
    private enum Kind: UInt8, Sendable {
        case literal, wildcard, pattern
    }

    private struct Entry: Sendable {
        var template: Template
        var hashes: [UInt64]
        var kinds: [Kind]
        /// UTF-8 of the words.
        var utf8: [[UInt8]]
        /// Per word: the length of its `key=` prefix, or 0.
        var keyLengths: [Int]
        var constants: Int
        var leaf: UInt64
        /// The leaf of the folded words, for templates with a run of `<*>`.
        var foldLeaf: UInt64?
        var mergedInto: Int?

        init(_ template: Template) {
            self.template = template
            hashes = []
            kinds = []
            utf8 = []
            keyLengths = []
            constants = 0
            leaf = 0
            foldLeaf = nil
            refresh()
        }

        mutating func refresh() {
            hashes = template.tokens.map(TemplateMiner.hash)
            kinds = template.tokens.map { word in
                word == TemplateMiner.wildcard ? .wildcard : (word.utf8.count > 3 && word.contains(TemplateMiner.wildcard) ? .pattern : .literal)
            }
            utf8 = template.tokens.map { Array($0.utf8) }
            keyLengths = utf8.map(TemplateMiner.keyLength)
            constants = kinds.reduce(0) { $0 + ($1 == .wildcard ? 0 : 1) }
            leaf = TemplateMiner.leafKey(count: template.tokens.count, firstHash: hashes.first, firstKind: kinds.first)
            let folded = TemplateMiner.folded(template.tokens)
            foldLeaf = folded.count == template.tokens.count
                ? nil : TemplateMiner.leafKey(count: folded.count, firstHash: hashes.first, firstKind: kinds.first)
        }

        /// Whether word `index` covers word `index` of the message.
        @inline(__always) func covers(_ index: Int, _ masked: MaskedMessage) -> Bool {
            switch kinds[index] {
            case .wildcard: return true
            case .literal: return hashes[index] == masked.hashes[index]
            case .pattern:
                return masked.bytes.withUnsafeBufferPointer { bytes in
                    TemplateMiner.wordMatches(utf8[index], UnsafeBufferPointer(rebasing: bytes[masked.start(index)..<masked.ends[index]]))
                }
            }
        }

        /// Whether the words differ only in the value of a `key=value` pair (`user=alice` and
        /// `user=bob`): the key is the constant, so for similarity they agree.
        @inline(__always) func sameKey(_ index: Int, _ masked: MaskedMessage) -> Bool {
            let length = keyLengths[index]
            guard length > 0 else { return false }
            let start = masked.start(index)
            guard masked.ends[index] - start > length else { return false }
            return utf8[index].withUnsafeBufferPointer { key in
                masked.bytes.withUnsafeBufferPointer { bytes in
                    UnsafeBufferPointer(rebasing: bytes[start..<(start + length)]).elementsEqual(UnsafeBufferPointer(rebasing: key[..<length]))
                }
            }
        }

        /// Share of constant words the message repeats in place (nil for another length).
        func score(_ masked: MaskedMessage) -> Double? {
            guard hashes.count == masked.count else { return nil }
            var equal = 0
            for index in 0..<masked.count where kinds[index] != .wildcard && (covers(index, masked) || sameKey(index, masked)) {
                equal += 1
            }
            return constants == 0 ? 1 : Double(equal) / Double(constants)
        }
    }

    public let configuration: Configuration
    /// Every template ever created, live or merged, in creation order.
    private var entries: [Entry] = []
    private var slotOfId: [Int: Int] = [:]
    /// Leaf key to an index into `leafMembers` (so a lookup copies no array).
    private var leafIndex: [UInt64: Int] = [:]
    private var leafMembers: [[Int]] = []
    /// Templates with a run of `<*>`, by the leaf of their folded words.
    private var foldIndex: [UInt64: [Int]] = [:]
    private var nextId = 1
    /// Masked messages seen before (hash of their words) and the template that took them: a
    /// repeat that its template still covers skips the search (it would score 1 there anyway).
    private var seen = SignatureTable()
    /// Reused between calls to `add` so masking does not allocate.
    private var scratch = MaskedMessage()

    public init(configuration: Configuration = .default) {
        self.configuration = configuration
    }

    /// Restores what was learned (persisted template list); ids continue after the highest.
    public init(configuration: Configuration = .default, restoring templates: [Template]) {
        self.configuration = configuration
        for template in templates.sorted(by: { $0.id < $1.id }) {
            insert(template)
            nextId = max(nextId, template.id + 1)
        }
    }

    /// Learns from one message; returns the id of its template (the template may have been generalised).
    @discardableResult
    public mutating func add(_ message: String) -> Int {
        // The reused buffers, moved out and back (no copy, no reference counting).
        var masked = MaskedMessage()
        swap(&masked, &scratch)
        defer { swap(&masked, &scratch) }
        prepare(message, into: &masked)
        let signature = Self.signature(masked)
        if let slot = cachedMatch(signature, masked) {
            entries[slot].template.count += 1
            return entries[slot].template.id
        }
        var target = masked
        var found = bestMatch(masked)
        if found == nil && configuration.collapseVariableRuns && masked.hasRuns {
            let folded = masked.folded()
            if let slot = bestMatch(folded) ?? bestFoldedMatch(folded) {
                found = slot
                target = folded
            }
        }
        guard let slot = found else {
            let template = Template(id: nextId, tokens: masked.words, count: 1)
            nextId += 1
            insert(template)
            remember(signature, entries.count - 1)
            return template.id
        }
        remember(signature, slot)
        entries[slot].template.count += 1
        let oldLeaf = entries[slot].leaf
        let oldFoldLeaf = entries[slot].foldLeaf
        var changed = false
        if entries[slot].hashes.count != target.count {
            // The template takes a list of another length: from now on it keeps the folded form.
            entries[slot].template.tokens = Self.folded(entries[slot].template.tokens)
            entries[slot].refresh()
            changed = true
        }
        var generalised: [String]?
        for index in 0..<target.count where !entries[slot].covers(index, target) {
            if generalised == nil { generalised = entries[slot].template.tokens }
            generalised![index] = Self.generalise(entries[slot].template.tokens[index], target.word(index))
        }
        if let tokens = generalised {
            entries[slot].template.tokens = tokens
            entries[slot].refresh()
            changed = true
        }
        guard changed else { return entries[slot].template.id }
        reindex(slot, oldLeaf: oldLeaf, oldFoldLeaf: oldFoldLeaf)
        return entries[mergeDuplicates(of: slot)].template.id
    }

    /// The template a message belongs to, without learning.
    public func match(_ message: String) -> Int? {
        var masked = MaskedMessage()
        prepare(message, into: &masked)
        if let slot = cachedMatch(Self.signature(masked), masked) { return entries[slot].template.id }
        if let slot = bestMatch(masked) { return entries[slot].template.id }
        if configuration.collapseVariableRuns && masked.hasRuns {
            let folded = masked.folded()
            if let slot = bestMatch(folded) ?? bestFoldedMatch(folded) { return entries[slot].template.id }
        }
        return nil
    }

    /// The template that took this masked message before, if it still covers it.
    private func cachedMatch(_ signature: UInt64, _ masked: MaskedMessage) -> Int? {
        guard let cached = seen.find(signature) else { return nil }
        let slot = liveSlot(cached)
        if coversAll(slot, masked) { return slot }
        if configuration.collapseVariableRuns && entries[slot].hashes.count != masked.count && masked.hasRuns
            && coversAll(slot, masked.folded())
        {
            return slot
        }
        return nil
    }

    private static func signature(_ masked: MaskedMessage) -> UInt64 {
        var h = UInt64(masked.count) &* 0x9E37_79B9_7F4A_7C15
        for word in masked.hashes { h = (h ^ word) &* 0xBF58_476D_1CE4_E5B9 &+ 0x94D0_49BB_1331_11EB }
        return h
    }

    /// Bounded: when full it starts over (deterministically), so memory stays flat on endless
    /// distinct messages.
    private mutating func remember(_ signature: UInt64, _ slot: Int) {
        seen.set(signature, slot)
    }

    private func coversAll(_ slot: Int, _ masked: MaskedMessage) -> Bool {
        guard entries[slot].hashes.count == masked.count else { return false }
        for index in 0..<masked.count where !entries[slot].covers(index, masked) { return false }
        return true
    }

    /// Signature to slot, open addressing with linear probing; the signature is already a good
    /// hash, so it indexes the table directly. Grows to `limit` entries, then starts over
    /// (deterministically), so memory stays bounded on endless distinct messages.
    private struct SignatureTable: Sendable {
        private var keys: [UInt64] = []
        private var slots: [Int] = []
        private var count = 0
        private static let limit = 1 << 16

        func find(_ signature: UInt64) -> Int? {
            guard !keys.isEmpty else { return nil }
            let key = signature == 0 ? 1 : signature
            let mask = keys.count - 1
            var index = Int(truncatingIfNeeded: key) & mask
            while true {
                let stored = keys[index]
                if stored == key { return slots[index] }
                if stored == 0 { return nil }
                index = (index + 1) & mask
            }
        }

        mutating func set(_ signature: UInt64, _ slot: Int) {
            if keys.isEmpty || (count + 1) * 2 > keys.count {
                if count + 1 > Self.limit {
                    keys = [UInt64](repeating: 0, count: keys.count)
                    count = 0
                } else {
                    grow()
                }
            }
            let key = signature == 0 ? 1 : signature
            let mask = keys.count - 1
            var index = Int(truncatingIfNeeded: key) & mask
            while keys[index] != 0 && keys[index] != key { index = (index + 1) & mask }
            if keys[index] == 0 { count += 1 }
            keys[index] = key
            slots[index] = slot
        }

        private mutating func grow() {
            let oldKeys = keys, oldSlots = slots
            let capacity = max(1024, keys.count * 2)
            keys = [UInt64](repeating: 0, count: capacity)
            slots = [Int](repeating: 0, count: capacity)
            let mask = capacity - 1
            for (position, key) in oldKeys.enumerated() where key != 0 {
                var index = Int(truncatingIfNeeded: key) & mask
                while keys[index] != 0 { index = (index + 1) & mask }
                keys[index] = key
                slots[index] = oldSlots[position]
            }
        }
    }

    /// Moves a changed template to its new leaves.
    private mutating func reindex(_ slot: Int, oldLeaf: UInt64, oldFoldLeaf: UInt64?) {
        let newLeaf = entries[slot].leaf
        if oldLeaf != newLeaf {
            if let index = leafIndex[oldLeaf] { leafMembers[index].removeAll { $0 == slot } }
            appendToLeaf(newLeaf, slot)
        }
        let newFoldLeaf = entries[slot].foldLeaf
        if oldFoldLeaf != newFoldLeaf {
            if let old = oldFoldLeaf { foldIndex[old]?.removeAll { $0 == slot } }
            if let new = newFoldLeaf { foldIndex[new, default: []].append(slot) }
        }
    }

    /// The best template with a run of `<*>` whose folded words match the folded message.
    private func bestFoldedMatch(_ folded: MaskedMessage) -> Int? {
        let key = Self.leafKey(count: folded.count, firstHash: folded.hashes.first,
                               firstKind: folded.hashes.first == Self.wildcardHash ? .wildcard : .literal)
        let wildcardKey = Self.leafKey(count: folded.count, firstHash: nil, firstKind: .wildcard)
        var best: Int?
        var bestScore = -1.0
        var bestConstants = -1
        for leaf in key == wildcardKey ? [key] : [key, wildcardKey] {
            for slot in foldIndex[leaf] ?? [] {
                let entry = entries[slot]
                let candidate = Entry(Template(id: entry.template.id, tokens: Self.folded(entry.template.tokens), count: 0))
                guard let score = candidate.score(folded), score >= configuration.similarityThreshold else { continue }
                if let current = best {
                    if score < bestScore { continue }
                    if score == bestScore {
                        if candidate.constants < bestConstants { continue }
                        if candidate.constants == bestConstants && entry.template.id > entries[current].template.id { continue }
                    }
                }
                best = slot
                bestScore = score
                bestConstants = candidate.constants
            }
        }
        return best
    }

    /// The live template with this id (after following merges).
    public func template(id: Int) -> Template? {
        guard let slot = slotOfId[id] else { return nil }
        return entries[liveSlot(slot)].template
    }

    /// The id a template is known by now: ids of merged templates lead to the survivor.
    public func resolve(_ id: Int) -> Int {
        guard let slot = slotOfId[id] else { return id }
        return entries[liveSlot(slot)].template.id
    }

    /// Live templates in id order.
    public var templates: [Template] {
        entries.filter { $0.mergedInto == nil }.map(\.template).sorted { $0.id < $1.id }
    }

    /// The words of a message as the miner sees them (masked, if configured).
    public func tokenize(_ message: String) -> [String] {
        var masked = MaskedMessage()
        prepare(message, into: &masked)
        return masked.words
    }

    private func prepare(_ message: String, into masked: inout MaskedMessage) {
        if configuration.maskVariables {
            Self.mask(message, collapseRuns: false, into: &masked)
        } else {
            masked = MaskedMessage()
            for word in message.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }) {
                let mark = masked.bytes.count
                masked.bytes.append(contentsOf: word.utf8)
                masked.ends.append(masked.bytes.count)
                masked.hashes.append(Self.hash(masked.bytes, mark, masked.bytes.count))
            }
        }
    }

    // MARK: - Tree

    /// Leaf of the tree: word count and first word (any word holding `<*>` counts as `<*>`).
    private static func leafKey(count: Int, firstHash: UInt64?, firstKind: Kind?) -> UInt64 {
        let first = firstKind == .literal ? (firstHash ?? 0) : wildcardHash
        return (first ^ UInt64(count)) &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(count)
    }

    private mutating func insert(_ template: Template) {
        let slot = entries.count
        let entry = Entry(template)
        entries.append(entry)
        slotOfId[template.id] = slot
        if let foldLeaf = entry.foldLeaf { foldIndex[foldLeaf, default: []].append(slot) }
        let leaf = appendToLeaf(entry.leaf, slot)
        if leafMembers[leaf].count > configuration.maxTemplatesPerLeaf {
            let members = leafMembers[leaf]
            var victim = 0
            for index in members.indices where entries[members[index]].template.count < entries[members[victim]].template.count {
                victim = index
            }
            leafMembers[leaf].remove(at: victim)
        }
    }

    @discardableResult
    private mutating func appendToLeaf(_ key: UInt64, _ slot: Int) -> Int {
        if let index = leafIndex[key] {
            leafMembers[index].append(slot)
            return index
        }
        leafIndex[key] = leafMembers.count
        leafMembers.append([slot])
        return leafMembers.count - 1
    }

    private func liveSlot(_ slot: Int) -> Int {
        var current = slot
        while let next = entries[current].mergedInto { current = next }
        return current
    }

    /// Length of `key=` at the start of a word (a key of letters, digits, `_`, `.`, `-`), or 0.
    static func keyLength(_ word: [UInt8]) -> Int {
        for (index, byte) in word.enumerated() {
            if byte == UInt8(ascii: "=") { return index > 0 && index + 1 < word.count ? index + 1 : 0 }
            if !(isLetter(byte) || isDigit(byte) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")) {
                return 0
            }
        }
        return 0
    }

    /// The most similar template at or above the threshold; ties go to the template with more
    /// constant words (the more specific), then to the lowest id.
    private func bestMatch(_ masked: MaskedMessage) -> Int? {
        let count = masked.count
        let key = Self.leafKey(count: count, firstHash: masked.hashes.first, firstKind: masked.hashes.first == Self.wildcardHash ? .wildcard : .literal)
        let wildcardKey = Self.leafKey(count: count, firstHash: nil, firstKind: .wildcard)
        var best: Int?
        var bestScore = -1.0
        let threshold = configuration.similarityThreshold
        func scan(_ leaf: Int) {
            for member in 0..<leafMembers[leaf].count {
                let slot = leafMembers[leaf][member]
                guard entries[slot].hashes.count == count else { continue }  // a leaf-key collision
                guard let score = entries[slot].score(masked), score >= threshold else { continue }
                let constants = entries[slot].constants
                if let current = best {
                    if score < bestScore { continue }
                    if score == bestScore {
                        if constants < entries[current].constants { continue }
                        if constants == entries[current].constants && entries[slot].template.id > entries[current].template.id { continue }
                    }
                }
                best = slot
                bestScore = score
            }
        }
        if let leaf = leafIndex[key] { scan(leaf) }
        if key != wildcardKey, let leaf = leafIndex[wildcardKey] { scan(leaf) }
        return best
    }

    /// Whether a template word covers a message word: the same literal text between its `<*>`s,
    /// in order.
    static func wordMatches(_ pattern: [UInt8], _ word: UnsafeBufferPointer<UInt8>) -> Bool {
        guard var star = firstWildcard(in: pattern, from: 0) else { return pattern.elementsEqual(word) }
        let w = word
        guard w.count >= star, w[..<star].elementsEqual(pattern[..<star]) else { return false }
        var position = star
        while true {
            let segmentStart = star + 3
            guard let next = firstWildcard(in: pattern, from: segmentStart) else {
                let suffix = pattern[segmentStart...]
                return w.count - position >= suffix.count && w[(w.count - suffix.count)...].elementsEqual(suffix)
            }
            let segment = pattern[segmentStart..<next]
            var found = -1
            if segment.isEmpty {
                found = position
            } else {
                var index = position
                while index + segment.count <= w.count {
                    if w[index..<index + segment.count].elementsEqual(segment) {
                        found = index
                        break
                    }
                    index += 1
                }
            }
            if found < 0 { return false }
            position = found + segment.count
            star = next
        }
    }

    static func wordMatches(_ pattern: String, _ word: String) -> Bool {
        Array(word.utf8).withUnsafeBufferPointer { wordMatches(Array(pattern.utf8), $0) }
    }

    private static func firstWildcard(in bytes: [UInt8], from start: Int) -> Int? {
        guard bytes.count >= 3, start <= bytes.count - 3 else { return nil }
        for index in start...(bytes.count - 3)
        where bytes[index] == 60 && bytes[index + 1] == 42 && bytes[index + 2] == 62 {
            return index
        }
        return nil
    }

    /// The template word that covers both: their common prefix and suffix (cut back to a piece
    /// boundary so no word is split mid-way) around one `<*>`.
    static func generalise(_ a: String, _ b: String) -> String {
        let x = Array(a.utf8), y = Array(b.utf8)
        var prefix = 0
        while prefix < x.count, prefix < y.count, x[prefix] == y[prefix] { prefix += 1 }
        while prefix > 0, !isDelimiter(x[prefix - 1]) { prefix -= 1 }
        var suffix = 0
        while suffix < x.count - prefix, suffix < y.count - prefix, x[x.count - 1 - suffix] == y[y.count - 1 - suffix] {
            suffix += 1
        }
        while suffix > 0, !isDelimiter(x[x.count - suffix]) { suffix -= 1 }
        if prefix == 0 && suffix == 0 { return wildcard }
        var out = Array(x[..<prefix])
        out.append(contentsOf: wildcardBytes)
        out.append(contentsOf: x[(x.count - suffix)...])
        return String(decoding: out, as: UTF8.self)
    }

    /// Merges every other template in the slot's leaf that now has the same words into the
    /// older one; returns the surviving slot.
    private mutating func mergeDuplicates(of slot: Int) -> Int {
        let key = entries[slot].leaf
        guard let leaf = leafIndex[key] else { return slot }
        let members = leafMembers[leaf]
        let tokens = entries[slot].template.tokens
        let twins = members.filter { entries[$0].template.tokens == tokens }
        guard twins.count > 1 else { return slot }
        let survivor = twins.min { entries[$0].template.id < entries[$1].template.id }!
        for twin in twins where twin != survivor {
            entries[survivor].template.count += entries[twin].template.count
            entries[twin].mergedInto = survivor
            if let foldLeaf = entries[twin].foldLeaf { foldIndex[foldLeaf]?.removeAll { $0 == twin } }
        }
        leafMembers[leaf] = members.filter { $0 == survivor || !twins.contains($0) }
        return survivor
    }
}
