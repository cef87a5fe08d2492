import Testing
@testable import Analysis

/// Error groups of a small fleet: one timeout pattern worded slightly differently in three
/// services (each with its own frames), Java NPEs in two services, and OOMs in one.
private func errorGroups() -> [ErrorGroupDocument] {
    var docs: [ErrorGroupDocument] = []
    let timeouts = [
        ("checkout", "TimeoutException", "Timeout after <*> calling payments-db"),
        ("billing", "TimeoutException", "Timeout calling payments-db after <*>"),
        ("orders", "TimeoutException", "timeout after <*> calling payments-db (attempt <*>)"),
    ]
    for (service, type, template) in timeouts {
        for (index, entry) in ["Client.charge", "Client.refund"].enumerated() {
            docs.append(.init(id: "\(service)-t\(index)", service: service, errorType: type, template: template,
                              frames: ["\(service).\(entry)", "\(service).Handler.handle"]))
        }
    }
    for service in ["checkout", "inventory"] {
        for (index, template) in ["Cannot invoke <*> because <*> is null",
                                  "Cannot invoke <*> because the return value of <*> is null"].enumerated() {
            docs.append(.init(id: "\(service)-npe\(index)", service: service, errorType: "java.lang.NullPointerException",
                              template: template, frames: ["\(service).Mapper.map", "\(service).Service.run"]))
        }
    }
    for (index, template) in ["Java heap space", "Java heap space while exporting <*>"].enumerated() {
        docs.append(.init(id: "reports-oom\(index)", service: "reports", errorType: "java.lang.OutOfMemoryError",
                          template: template, frames: ["reports.Export.build", "reports.Buffer.grow"]))
    }
    return docs
}

@Suite struct FeatureHasherTests {
    @Test func templateTokensDropWildcardsAndShortTokens() {
        #expect(FeatureHasher.templateTokens("Timeout after <*> calling payments-db at <*>: a")
            == ["timeout", "after", "calling", "payments", "db", "at"])
    }

    @Test func errorTypeTokensSplitCamelCaseAndKeepTheWholeName() {
        #expect(FeatureHasher.errorTypeTokens("java.lang.NullPointerException")
            == ["java", "lang", "null", "pointer", "exception", "nullpointerexception"])
        #expect(FeatureHasher.errorTypeTokens("HTTPTimeoutError") == ["http", "timeout", "error", "httptimeouterror"])
        #expect(FeatureHasher.frameTokens(["Foo.bar", " "]) == ["f:foo.bar"])
    }

    @Test func vectorsAreNormalisedStableAndSeparateWordsFromFrames() {
        let doc = ErrorGroupDocument(id: "a", service: "s", errorType: "IOException", template: "disk full on <*>", frames: ["disk"])
        let hasher = FeatureHasher(fittingOn: [doc])
        let v = hasher.vector(doc)
        #expect(v.count == 256)
        #expect(abs(v.reduce(0) { $0 + $1 * $1 } - 1) < 1e-5)
        #expect(hasher.vector(doc) == v)
        #expect(FeatureHasher.hash("disk") != FeatureHasher.hash("f:disk"))
        #expect(hasher.weightedTerms(doc).map(\.term).contains("f:disk"))
        let empty = ErrorGroupDocument(id: "e", service: "s", errorType: nil, template: "<*>", frames: [])
        #expect(hasher.vector(empty).allSatisfy { $0 == 0 })
    }

    @Test func hashIsFNV1a() {
        // FNV-1a of "a" is 0xaf63dc4c8601ec8c; the finaliser is splitmix64's (as StableHash).
        var z: UInt64 = 0xaf63_dc4c_8601_ec8c
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        #expect(FeatureHasher.hash("a") == z ^ (z >> 31))
    }

    @Test func rareTermsWeighMore() {
        let docs = [
            ErrorGroupDocument(id: "1", service: "s", errorType: nil, template: "connection refused", frames: []),
            ErrorGroupDocument(id: "2", service: "s", errorType: nil, template: "connection reset", frames: []),
            ErrorGroupDocument(id: "3", service: "s", errorType: nil, template: "connection timeout", frames: []),
        ]
        let hasher = FeatureHasher(fittingOn: docs)
        #expect(hasher.inverseDocumentFrequency("refused") > hasher.inverseDocumentFrequency("connection"))
        #expect(hasher.inverseDocumentFrequency("never-seen") >= hasher.inverseDocumentFrequency("refused"))
    }
}

@Suite struct PatternClustererTests {
    @Test func crossServiceTimeoutsClusterTogether() {
        let docs = errorGroups()
        let result = PatternClusterer.cluster(docs, configuration: .init(clusterCount: .automatic(2...8)))
        let timeoutIDs = Set(docs.filter { $0.id.contains("-t") }.map(\.id))
        let timeoutClusters = Set(docs.indices.filter { timeoutIDs.contains(docs[$0].id) }.map { result.assignments[$0] })
        #expect(timeoutClusters.count == 1, "timeouts split: \(result.clusters.map(\.label))")
        let cluster = result.clusters[timeoutClusters.first!]
        #expect(Set(cluster.memberIDs) == timeoutIDs, "\(cluster.memberIDs)")
        #expect(cluster.services == ["billing", "checkout", "orders"])
        #expect(cluster.spansServices)
        #expect(cluster.terms.prefix(3).contains { $0.term.contains("timeout") || $0.term.contains("timed") }, "\(cluster.label)")

        // NPEs and OOMs are not mixed with each other or with the timeouts.
        let npe = Set(docs.indices.filter { docs[$0].id.contains("npe") }.map { result.assignments[$0] })
        let oom = Set(docs.indices.filter { docs[$0].id.contains("oom") }.map { result.assignments[$0] })
        #expect(npe.count == 1 && oom.count == 1)
        #expect(npe.isDisjoint(with: oom) && npe.isDisjoint(with: timeoutClusters) && oom.isDisjoint(with: timeoutClusters))
        #expect(result.clusters[npe.first!].services == ["checkout", "inventory"])
        #expect(result.clusters[npe.first!].terms.contains { $0.term == "null" })
        #expect(result.clusters[oom.first!].terms.contains { $0.term == "memory" || $0.term == "heap" })
    }

    @Test func newDocumentsAreClassifiedLikeTheirPattern() {
        let docs = errorGroups()
        let result = PatternClusterer.cluster(docs, configuration: .init(clusterCount: .automatic(2...8)))
        let newTimeout = ErrorGroupDocument(id: "new", service: "shipping", errorType: "TimeoutException",
                                            template: "Timeout after <*> calling payments-db", frames: ["shipping.Client.call"])
        #expect(result.classify(newTimeout) == result.assignments[0])
        #expect(result.clusters.count == result.model.centroids.rows)
        #expect(result.clusters.map(\.memberIDs.count) == result.clusters.map(\.memberIDs.count).sorted(by: >))
    }

    @Test func membersWithNoTemplateWordInCommonAreNeverOneCluster() {
        // k-means is held to one cluster; the type and frames are the same, the words are not.
        let docs = [
            ErrorGroupDocument(id: "a", service: "checkout", errorType: "AppError", template: "cart <*> has an invalid coupon <*>",
                               frames: ["App.handle"]),
            ErrorGroupDocument(id: "b", service: "search", errorType: "AppError", template: "query parse failed at position <*>",
                               frames: ["App.handle"]),
            ErrorGroupDocument(id: "c", service: "orders", errorType: "AppError", template: "coupon <*> expired", frames: ["App.handle"]),
            ErrorGroupDocument(id: "d", service: "orders", errorType: "AppError", template: "<*>", frames: ["App.handle"]),
        ]
        let result = PatternClusterer.cluster(docs, configuration: .init(clusterCount: .fixed(1)))
        #expect(result.assignments[0] == result.assignments[2], "linked by 'coupon'")
        #expect(result.assignments[0] != result.assignments[1], "'at' and 'an' are too common to link")
        #expect(result.assignments[3] == result.assignments[0], "a template without words stays with the first set")
        #expect(result.clusters.count == 2 && result.model.centroids.rows == 2)
        #expect(result.clusters[0].memberIDs == ["a", "c", "d"] && result.clusters[1].memberIDs == ["b"])
        #expect(result.classify(docs[1]) == result.assignments[1])
    }

    @Test func deterministicAndHandlesEmptyInput() {
        let docs = errorGroups()
        let a = PatternClusterer.cluster(docs)
        let b = PatternClusterer.cluster(docs)
        #expect(a.clusters == b.clusters && a.assignments == b.assignments)
        let none = PatternClusterer.cluster([])
        #expect(none.clusters.isEmpty && none.assignments.isEmpty)
        let single = PatternClusterer.cluster([docs[0]])
        #expect(single.clusters.count == 1 && single.clusters[0].memberIDs == [docs[0].id])
    }
}
