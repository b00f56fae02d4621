/**
 * Compiled process graphs by definition id. A definition never changes once
 * deployed (new content means a new version and a new id), so entries never go
 * stale; the cache is bounded only to cap memory.
 */
import { compileProcessOffThread } from '../bpmn/compile-thread.js';
import type { ProcessGraph } from '../bpmn/types.js';
import { BatonError } from '../errors.js';
import type { Executor } from '../store/db.js';
import { definitionById, resourceContent } from '../store/definitions.js';

export interface DefinitionCache {
  get(db: Executor, definitionId: string): Promise<ProcessGraph>;
}

/**
 * A compiled graph held in memory weighs about 25 times its XML (measured: a
 * 0.9 MB model of 10,000 elements retained 23 MB): the estimate the cache
 * counts against its budget.
 */
const BYTES_PER_XML_CHAR = 25;

/** An LRU of compiled graphs, bounded by entries and by their estimated memory (BATON_DEFINITION_CACHE_MB). */
export function createDefinitionCache(max = 500, maxBytes = 256 * 1024 * 1024): DefinitionCache {
  const cache = new Map<string, { graph: ProcessGraph; bytes: number }>();
  let bytes = 0;
  return {
    async get(db, definitionId) {
      const hit = cache.get(definitionId);
      if (hit) {
        // Map keeps insertion order: re-inserting makes it the most recent.
        cache.delete(definitionId);
        cache.set(definitionId, hit);
        return hit.graph;
      }
      const def = await definitionById(db, definitionId);
      if (!def) throw new BatonError('definition_not_found', `process definition ${definitionId} not found`);
      const xml = await resourceContent(db, def.deployment_id, def.resource_name);
      if (xml === undefined) throw new BatonError('definition_not_found', `resource ${def.resource_name} of definition ${definitionId} not found`);
      // the language resolved at deploy: it reproduces a deployment's `language` option
      const language = def.language === 'python' || def.language === 'javascript' ? def.language : undefined;
      const graph = await compileProcessOffThread(xml, def.key, def.resource_name, language !== undefined ? { language } : {});
      const entry = { graph, bytes: xml.length * BYTES_PER_XML_CHAR };
      cache.set(definitionId, entry);
      bytes += entry.bytes;
      // the newest entry stays even when it alone is over the budget: it is in use
      while (cache.size > 1 && (cache.size > max || bytes > maxBytes)) {
        const oldest = cache.keys().next().value;
        if (oldest === undefined) break;
        bytes -= cache.get(oldest)?.bytes ?? 0;
        cache.delete(oldest);
      }
      return graph;
    },
  };
}
