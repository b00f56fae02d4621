/**
 * Compiled process graphs by definition id. A definition never changes once
 * deployed (new content means a new version and a new id), so entries never go
 * stale; the cache is bounded only to cap memory.
 */
import { compileProcess } from '../bpmn/index.js';
import type { ProcessGraph } from '../bpmn/types.js';
import { BatonError } from '../errors.js';
import type { Executor } from '../store/db.js';
import { definitionById, resourceContent } from '../store/definitions.js';

export interface DefinitionCache {
  get(db: Executor, definitionId: string): Promise<ProcessGraph>;
}

export function createDefinitionCache(max = 500): DefinitionCache {
  const cache = new Map<string, ProcessGraph>();
  return {
    async get(db, definitionId) {
      const hit = cache.get(definitionId);
      if (hit) {
        // Map keeps insertion order: re-inserting makes it the most recent.
        cache.delete(definitionId);
        cache.set(definitionId, hit);
        return hit;
      }
      const def = await definitionById(db, definitionId);
      if (!def) throw new BatonError('definition_not_found', `process definition ${definitionId} not found`);
      const xml = await resourceContent(db, def.deployment_id, def.resource_name);
      if (xml === undefined) throw new BatonError('definition_not_found', `resource ${def.resource_name} of definition ${definitionId} not found`);
      const graph = await compileProcess(xml, def.key, def.resource_name);
      cache.set(definitionId, graph);
      if (cache.size > max) {
        const oldest = cache.keys().next().value;
        if (oldest !== undefined) cache.delete(oldest);
      }
      return graph;
    },
  };
}
