/** `node --import <dist>/testing/no-native.js …`: run with the native tfjs backends hidden. */
import { register } from 'node:module';

register('./no-native-hooks.js', import.meta.url);
