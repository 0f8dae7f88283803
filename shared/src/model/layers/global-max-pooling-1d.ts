/** GlobalMaxPooling1D: the maximum over L of [N, L, C] (keepdims keeps it as 1). */
import { globalPool } from './pooling.js';

export const GlobalMaxPooling1D = globalPool('GlobalMaxPooling1D', 'max', 1);
