/**
 * `{{ name }}` / `{{ order.customer.name }}` substitution for SpiffArena's
 * instructionsForEndUser (a small part of Jinja: dotted paths, no filters or
 * statements). A missing value renders as an empty string; objects and arrays
 * as JSON.
 */
import type { Json, JsonObject } from '../errors.js';

export function renderTemplate(template: string, variables: JsonObject): string {
  return template.replace(/\{\{\s*([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*|\[\d+\])*)\s*(?:\|[^}]*)?\}\}/g, (_m, path: string) => {
    let value: Json | undefined = variables;
    for (const part of path.split(/\.|\[(\d+)\]/).filter((p) => p !== undefined && p !== '')) {
      if (value === null || typeof value !== 'object') {
        value = undefined;
        break;
      }
      value = Array.isArray(value) ? value[Number(part)] : value[part];
    }
    if (value === undefined || value === null) return '';
    return typeof value === 'object' ? JSON.stringify(value) : String(value);
  });
}
